// computeBgpConfig: (datastore snapshot, node name, environment) -> this node's effective BGP
// configuration, exactly as Calico v3.31.7 derives it. Calico splits the work between confd's
// backend (confd/pkg/backends/calico/client.go updatePeersV1: which peerings exist; routes.go:
// service routes) and the BIRD templates (confd/etc/calico/confd/templates: the knobs of each
// session and the export filters); both halves are here, named after their Calico originals.
// Pure: no I/O, no clock; the same inputs always give the same output, in a stable order.
import type { BGPConfiguration, BGPFilterRule, BGPPeer, Node, Selector } from '@tabby/datastore';
import {
  formatCidr,
  formatIp,
  matches,
  parseAsNumber,
  parseCidr,
  parseDuration,
  parseIp,
  parseIpPort,
  parseSelector,
} from '@tabby/datastore';
import { createHash } from 'node:crypto';
import type { BgpEnvironment, BgpSnapshot } from './inputs.js';
import type {
  BgpConfig,
  BlockExport,
  Family,
  FamilyConfig,
  FamilyExports,
  FilterConfig,
  FilterRuleConfig,
  PeerConfig,
  PeerType,
  PoolExport,
  PrefixAdvertisement,
} from './model.js';
import { activeLocalBgpPeers } from './local-workloads.js';
import { serviceRoutes } from './services.js';

/** Calico's defaults when no BGPConfiguration says otherwise (confd client.go globalDefaults). */
export const DEFAULT_AS_NUMBER = 64512;

/** What Calico's bgpnodeprocessor derives from a Node (libcalico-go updateprocessors/bgpnodeprocessor.go). */
interface NodeBgp {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly networkV4: string;
  readonly networkV6: string;
  /** The node's own AS, '' when it has none. */
  readonly asNumber: number | undefined;
  readonly rrClusterId: string;
}

/** A peering before it is written out: Calico's bgpPeer struct (client.go). */
interface RawPeer {
  ip: string;
  family: Family;
  asNumber: number;
  localAsNumber: number;
  rrClusterId: string;
  password: string | undefined;
  sourceAddr: string;
  port: number;
  keepNextHop: boolean;
  restartTime: number | undefined;
  calicoNode: boolean;
  numAllowLocalAs: number;
  ttlSecurity: number;
  reachableBy: string;
  filters: readonly string[];
  passiveMode: boolean;
  localBgpPeer: boolean;
  nextHopMode: string;
  keepaliveTime: number | undefined;
  source: string;
  peerType: 'global' | 'node specific';
}

const asNum = (v: string | number | undefined): number | undefined =>
  v === undefined ? undefined : parseAsNumber(String(v));

function nodeBgp(n: Node, kubeLabels: Readonly<Record<string, string>> | undefined): NodeBgp {
  const bgp = n.spec.bgp;
  const addr = (text: string | undefined): [string, string] => {
    if (text === undefined || text === '') return ['', ''];
    const c = parseCidr(text);
    if (c !== undefined) {
      const ip = formatIp(parseIp(text.slice(0, text.indexOf('/')))!);
      return [ip, formatCidr(c)];
    }
    const a = parseIp(text);
    return a === undefined ? ['', ''] : [formatIp(a), formatCidr({ ...a, len: a.family === 4 ? 32 : 128 })];
  };
  const [ipv4, networkV4] = addr(bgp?.ipv4Address);
  const [ipv6, networkV6] = addr(bgp?.ipv6Address);
  return {
    name: n.metadata.name,
    labels: { ...kubeLabels, ...n.metadata.labels },
    ipv4,
    ipv6,
    networkV4,
    networkV6,
    asNumber: asNum(bgp?.asNumber),
    rrClusterId: bgp?.routeReflectorClusterID ?? '',
  };
}

/** Calico's hashToIPv4 (confd template_funcs.go): the first four bytes of sha256(name), kept out of class D/E. */
export function hashToIPv4(nodeName: string): string {
  const h = createHash('sha256').update(nodeName).digest();
  let b0 = h[0]!;
  if (b0 > 223) b0 -= 32;
  return `${b0}.${h[1]}.${h[2]}.${h[3]}`;
}

/** Calico's BGPFilterFunctionName: bgp_<name>_<dir>FilterV<n>, the name cut and hashed to fit 64 chars. */
export function bgpFilterFunctionName(
  filter: string,
  direction: 'import' | 'export',
  family: Family,
): string {
  const fixed = `bgp__${direction}FilterV${family}`.length;
  const maxLen = 64 - fixed;
  let name = filter;
  if (filter.length > maxLen) {
    const hash = createHash('sha256').update(filter).digest('hex').toUpperCase().slice(0, 16);
    name = `${filter.slice(0, maxLen - 17)}_${hash}`;
  }
  return `bgp_${name}_${direction}FilterV${family}`;
}

/** Go's strings compare as bytes; IP strings in Calico's templates compare that way ("gt"). */
const gt = (a: string, b: string): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0;

const familyOf = (ip: string): Family => (ip.includes(':') ? 6 : 4);

function seconds(d: string | undefined): number | undefined {
  if (d === undefined) return undefined;
  const ms = parseDuration(d);
  return ms === undefined ? undefined : Math.round(ms / 1000);
}

/** Calico v1 key of a peering (libcalico-go model.GlobalBGPPeerKey / NodeBGPPeerKey default paths). */
function peerKey(node: string | undefined, ip: string, port: number): string {
  const ipPort = port === 0 ? ip : `${ip}-${port}`;
  const fam = `peer_v${familyOf(ip)}`;
  return node === undefined ? `/bgp/v1/global/${fam}/${ipPort}` : `/bgp/v1/host/${node}/${fam}/${ipPort}`;
}

export function computeBgpConfig(snap: BgpSnapshot, nodeName: string, env: BgpEnvironment = {}): BgpConfig {
  const warnings: string[] = [];
  const selectorCache = new Map<string, Selector | undefined>();
  const selector = (text: string, where: string): Selector | undefined => {
    if (!selectorCache.has(text)) {
      try {
        selectorCache.set(text, parseSelector(text));
      } catch (e) {
        warnings.push(`${where}: selector ${JSON.stringify(text)} does not parse: ${(e as Error).message}`);
        selectorCache.set(text, undefined);
      }
    }
    return selectorCache.get(text);
  };

  const globalCfg = snap.bgpConfigurations.find((c) => c.metadata.name === 'default');
  const nodeCfg = snap.bgpConfigurations.find((c) => c.metadata.name === `node.${nodeName}`);
  const globalAs = asNum(globalCfg?.spec.asNumber) ?? DEFAULT_AS_NUMBER;
  const globalListenPort = globalCfg?.spec.listenPort ?? 0;
  const nodeListenPorts = new Map<string, number>();
  for (const c of snap.bgpConfigurations)
    if (c.metadata.name.startsWith('node.') && c.spec.listenPort !== undefined && c.spec.listenPort !== 0)
      nodeListenPorts.set(c.metadata.name.slice('node.'.length), c.spec.listenPort);
  const listenPortOf = (n: string): number => nodeListenPorts.get(n) ?? globalListenPort;

  const nodes = new Map<string, NodeBgp>();
  for (const n of [...snap.nodes].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)))
    nodes.set(n.metadata.name, nodeBgp(n, snap.kubernetes.nodeLabels.get(n.metadata.name)));
  const self = nodes.get(nodeName);
  if (self === undefined) warnings.push(`node ${nodeName} has no Node resource: no BGP address, no peers`);
  const me: NodeBgp = self ?? {
    name: nodeName,
    labels: {},
    ipv4: '',
    ipv6: '',
    networkV4: '',
    networkV6: '',
    asNumber: undefined,
    rrClusterId: '',
  };
  const nodeAs = me.asNumber ?? globalAs;
  const nodeIps = new Set<string>();
  for (const n of nodes.values()) {
    if (n.ipv4 !== '') nodeIps.add(n.ipv4);
    if (n.ipv6 !== '') nodeIps.add(n.ipv6);
  }
  const nodesMatching = (sel: string, where: string): string[] => {
    const s = selector(sel, where);
    return s === undefined ? [] : [...nodes.values()].filter((n) => matches(s, n.labels)).map((n) => n.name);
  };

  const secret = (ref: { name?: string; key: string } | undefined, where: string): string | undefined => {
    if (ref === undefined) return undefined;
    const s = snap.kubernetes.secrets.find((x) => x.name === (ref.name ?? ''));
    const v = s?.data[ref.key];
    if (v === undefined)
      warnings.push(
        `${where}: password Secret ${ref.name ?? ''} key ${ref.key} not found; peering without a password`,
      );
    return v;
  };

  // ---- client.go updatePeersV1: which peerings exist --------------------------------------
  const peersV1 = new Map<string, RawPeer>();
  const emit = (key: string, p: RawPeer, globalKey: string | undefined): void => {
    if (peersV1.has(key)) return; // first writer wins: an explicit peering beats a reverse one
    if (globalKey !== undefined && peersV1.has(globalKey)) return;
    peersV1.set(key, p);
  };
  const nextHop = (r: BGPPeer): [boolean, string] =>
    r.spec.nextHopMode !== undefined
      ? [false, r.spec.nextHopMode]
      : [r.spec.keepOriginalNextHop ?? false, ''];
  const blank = (r: BGPPeer, ip: string): RawPeer => ({
    ip,
    family: familyOf(ip),
    asNumber: 0,
    localAsNumber: 0,
    rrClusterId: '',
    password: undefined,
    sourceAddr: '',
    port: 0,
    keepNextHop: false,
    restartTime: undefined,
    calicoNode: false,
    numAllowLocalAs: 0,
    ttlSecurity: 0,
    reachableBy: '',
    filters: r.spec.filters ?? [],
    passiveMode: false,
    localBgpPeer: false,
    nextHopMode: '',
    keepaliveTime: seconds(r.spec.keepaliveTime),
    source: r.metadata.name,
    peerType: r.spec.node === undefined && r.spec.nodeSelector === undefined ? 'global' : 'node specific',
  });
  // setPeerConfigFieldsFromV3Resource
  const setV3Fields = (peers: RawPeer[], r: BGPPeer): void => {
    const password = secret(r.spec.password?.secretKeyRef, `BGPPeer ${r.metadata.name}`);
    for (const p of peers) {
      p.password = password;
      p.sourceAddr = r.spec.sourceAddress ?? 'UseNodeIP';
      p.restartTime = seconds(r.spec.maxRestartTime);
    }
  };
  // nodeAsBGPPeers
  const nodeAsPeers = (peerNode: string, v4: boolean, v6: boolean, r: BGPPeer): RawPeer[] => {
    const n = nodes.get(peerNode);
    if (n === undefined) return [];
    const out: RawPeer[] = [];
    for (const ip of [v4 ? n.ipv4 : '', v6 ? n.ipv6 : '']) {
      if (ip === '') continue;
      const p = blank(r, ip);
      p.ttlSecurity = r.spec.ttlSecurity ?? 0;
      p.reachableBy = r.spec.reachableBy ?? '';
      p.port = listenPortOf(peerNode);
      p.asNumber = n.asNumber ?? globalAs;
      p.rrClusterId = n.rrClusterId;
      [p.keepNextHop, p.nextHopMode] = nextHop(r);
      out.push(p);
    }
    return out;
  };
  // nodesWithIPPortAndAS
  const nodesWithIpPortAs = (ip: string, as: number | undefined, port: number): string[] => {
    const want = as === undefined || as === 0 ? globalAs : as;
    const out: string[] = [];
    for (const n of nodes.values()) {
      if (n.ipv4 !== ip && n.ipv6 !== ip) continue;
      if ((n.asNumber ?? globalAs) !== want) continue;
      if (port !== 0) {
        const np = nodeListenPorts.get(n.name);
        if (np !== undefined && np !== port) continue;
        // Calico's else-if: even a node port that matches still meets the global port check.
        if (globalListenPort !== 0 && globalListenPort !== port) continue;
      }
      out.push(n.name);
    }
    return out;
  };
  // client.go localBGPPeerDataAsBGPPeers, over Felix's choice of peer per workload.
  const localEndpoints =
    snap.localBgpPeerEndpoints ??
    activeLocalBgpPeers(
      snap.bgpPeers,
      snap.workloadEndpoints,
      self === undefined ? undefined : snap.nodes.find((n) => n.metadata.name === nodeName),
      nodeName,
    );
  const localWorkloadPeers = (r: BGPPeer): RawPeer[] => {
    const out: RawPeer[] = [];
    for (const e of localEndpoints) {
      if (e.bgpPeerName !== r.metadata.name) continue;
      for (const ip of [e.ipv4, e.ipv6]) {
        const a = ip === undefined ? undefined : parseIp(ip);
        if (a === undefined) continue;
        const p = blank(r, formatIp(a));
        p.localAsNumber = asNum(r.spec.localASNumber) ?? 0;
        p.asNumber = asNum(r.spec.asNumber) ?? 0;
        p.sourceAddr = 'None';
        p.passiveMode = true;
        p.localBgpPeer = true;
        out.push(p);
      }
    }
    return out;
  };

  const sortedPeers = [...snap.bgpPeers].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const globalPass of [true, false]) {
    for (const r of sortedPeers) {
      const isGlobal = r.spec.nodeSelector === undefined && r.spec.node === undefined;
      if (globalPass !== isGlobal) continue;
      let localNodes: string[] = [];
      if (r.spec.nodeSelector !== undefined)
        localNodes = nodesMatching(r.spec.nodeSelector, `BGPPeer ${r.metadata.name} nodeSelector`);
      else if (r.spec.node !== undefined) localNodes = [r.spec.node];
      // Only this node's peerings matter here; keys of other nodes never collide with ours.
      if (!globalPass && !localNodes.includes(nodeName)) continue;

      let peers: RawPeer[] = [];
      if (r.spec.localWorkloadSelector !== undefined) peers = localWorkloadPeers(r);
      else if (r.spec.peerSelector !== undefined) {
        for (const pn of nodesMatching(r.spec.peerSelector, `BGPPeer ${r.metadata.name} peerSelector`))
          peers.push(...nodeAsPeers(pn, true, true, r));
        setV3Fields(peers, r);
      } else {
        const hp = r.spec.peerIP === undefined ? undefined : parseIpPort(r.spec.peerIP);
        const a = hp === undefined ? undefined : parseIp(hp.ip);
        if (hp === undefined || a === undefined) {
          warnings.push(`BGPPeer ${r.metadata.name}: peerIP is not set or malformed; skipped`);
          continue;
        }
        const ip = formatIp(a);
        let port = hp.port ?? 0;
        if (port === 0) {
          const named = nodesWithIpPortAs(hp.ip, asNum(r.spec.asNumber), 0);
          if (named.length > 0) port = listenPortOf(named[0]!);
        }
        let reachableBy = '';
        if (r.spec.reachableBy !== undefined && r.spec.reachableBy !== '') {
          const rb = parseIp(r.spec.reachableBy);
          if (rb === undefined || rb.family !== a.family) {
            warnings.push(
              `BGPPeer ${r.metadata.name}: reachableBy is malformed or not of peerIP's family; skipped`,
            );
            continue;
          }
          reachableBy = r.spec.reachableBy;
        }
        const p = blank(r, ip);
        p.asNumber = asNum(r.spec.asNumber) ?? 0;
        p.localAsNumber = asNum(r.spec.localASNumber) ?? 0;
        p.port = port;
        [p.keepNextHop, p.nextHopMode] = nextHop(r);
        p.calicoNode = nodeIps.has(hp.ip);
        p.ttlSecurity = r.spec.ttlSecurity ?? 0;
        p.numAllowLocalAs = r.spec.numAllowedLocalASNumbers ?? 0;
        p.reachableBy = reachableBy;
        peers.push(p);
        setV3Fields(peers, r);
      }
      for (const p of peers) {
        if (globalPass) emit(peerKey(undefined, p.ip, p.port), p, undefined);
        else emit(peerKey(nodeName, p.ip, p.port), p, peerKey(undefined, p.ip, p.port));
      }
    }
  }
  // Reverse peerings: a BGPPeer whose remote side is a Tabby node makes that node peer back.
  for (const r of sortedPeers) {
    if (r.spec.reversePeering === 'Manual' || r.spec.localWorkloadSelector !== undefined) continue;
    let localNodes: string[];
    let v4 = false;
    let v6 = false;
    if (r.spec.peerSelector !== undefined) {
      localNodes = nodesMatching(r.spec.peerSelector, `BGPPeer ${r.metadata.name} peerSelector`);
      v4 = v6 = true;
    } else {
      const hp = r.spec.peerIP === undefined ? undefined : parseIpPort(r.spec.peerIP);
      if (hp === undefined) continue;
      localNodes = nodesWithIpPortAs(hp.ip, asNum(r.spec.asNumber), hp.port ?? 0);
      if (hp.ip.includes(':')) v6 = true;
      else v4 = true;
    }
    if (!localNodes.includes(nodeName)) continue;
    let peerNodes: string[];
    if (r.spec.nodeSelector !== undefined)
      peerNodes = nodesMatching(r.spec.nodeSelector, `BGPPeer ${r.metadata.name} nodeSelector`);
    else if (r.spec.node !== undefined) peerNodes = [r.spec.node];
    else peerNodes = [...nodes.keys()];
    const peers = peerNodes.flatMap((pn) => nodeAsPeers(pn, v4, v6, r));
    if (peers.length === 0) continue;
    setV3Fields(peers, r);
    for (const p of peers) {
      p.peerType = 'node specific';
      emit(peerKey(nodeName, p.ip, p.port), p, peerKey(undefined, p.ip, p.port));
    }
  }

  // ---- the rest of what the templates read -------------------------------------------------
  const meshEnabled = globalCfg?.spec.nodeToNodeMeshEnabled ?? true;
  const meshRestart = seconds(globalCfg?.spec.nodeMeshMaxRestartTime);
  const meshPassword = secret(
    globalCfg?.spec.nodeMeshPassword?.secretKeyRef,
    'BGPConfiguration default nodeMeshPassword',
  );
  const filtersByName = new Map(snap.bgpFilters.map((f) => [f.metadata.name, f]));
  const bindNodeIp = globalCfg?.spec.bindMode === 'NodeIP';

  const family = (fam: Family): FamilyConfig => {
    const nodeIp = fam === 4 ? me.ipv4 : me.ipv6;
    const network = fam === 4 ? me.networkV4 : me.networkV6;
    const peers: PeerConfig[] = [];
    const skipped: { key: string; reason: string }[] = [];
    const rulesOf = (name: string, dir: 'import' | 'export'): readonly BGPFilterRule[] => {
      const spec = filtersByName.get(name)?.spec;
      const rules =
        dir === 'import'
          ? fam === 4
            ? spec?.importV4
            : spec?.importV6
          : fam === 4
            ? spec?.exportV4
            : spec?.exportV6;
      return rules ?? [];
    };
    const filterNames = (names: readonly string[], dir: 'import' | 'export', where: string): string[] =>
      names.filter((f) => {
        if (!filtersByName.has(f)) {
          warnings.push(`${where}: BGPFilter ${f} does not exist; ignored`);
          return false;
        }
        return rulesOf(f, dir).length > 0;
      });

    if (nodeIp !== '') {
      // Node-to-node mesh (bird.cfg.template "Node-to-node mesh").
      if (me.rrClusterId === '' && meshEnabled) {
        for (const n of nodes.values()) {
          const ip = fam === 4 ? n.ipv4 : n.ipv6;
          const key = `/bgp/v1/host/${n.name}/ip_addr_v${fam}`;
          if (ip === '') continue;
          if (ip === nodeIp) continue;
          if (n.rrClusterId !== '') {
            skipped.push({ key, reason: `${n.name} is a route reflector with cluster ID ${n.rrClusterId}` });
            continue;
          }
          const port = listenPortOf(n.name);
          peers.push({
            name: `Mesh_${ip.split(fam === 4 ? '.' : ':').join('_')}`,
            type: 'node-to-node mesh',
            source: '',
            address: ip,
            ...(port !== 0 ? { port } : {}),
            asNumber: n.asNumber ?? globalAs,
            localAsNumber: nodeAs,
            localAsOverride: false,
            internal: true, // Calico exports to mesh peers as internal whatever their AS
            passive: gt(ip, nodeIp),
            sourceAddress: nodeIp,
            nextHop: 'auto',
            addPath: 'both',
            ...(meshRestart !== undefined ? { gracefulRestartTime: meshRestart } : {}),
            ...(meshPassword !== undefined && meshPassword !== '' ? { password: meshPassword } : {}),
            importFilters: [],
            exportFilters: [],
            key,
          });
        }
      }
      // Global, node-specific and local-workload peers.
      for (const [key, p] of [...peersV1.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        if (p.family !== fam) continue;
        const isGlobalKey = key.startsWith('/bgp/v1/global/');
        if (!p.localBgpPeer && p.ip === nodeIp) {
          skipped.push({ key, reason: 'it is this node' });
          continue;
        }
        const effAs = p.localAsNumber !== 0 ? p.localAsNumber : nodeAs;
        const internal = p.asNumber === effAs;
        const where = `BGPPeer ${p.source}`;
        const type: PeerType = p.localBgpPeer ? 'local workload' : isGlobalKey ? 'global' : 'node specific';
        const prefix = p.localBgpPeer ? 'Local_Workload' : isGlobalKey ? 'Global' : 'Node';
        let id = p.ip.split(fam === 4 ? '.' : ':').join('_');
        if (p.port !== 0) id = `${id}_port_${p.port}`;
        let nextHop: PeerConfig['nextHop'] = 'auto';
        if (!internal && p.keepNextHop) nextHop = 'keep';
        if (p.nextHopMode === 'Self') nextHop = 'self';
        if (p.nextHopMode === 'Keep') nextHop = 'keep';
        // Only the global section of the template makes the higher address of two Tabby nodes passive.
        const passive = p.passiveMode || (isGlobalKey && p.calicoNode && gt(p.ip, nodeIp));
        peers.push({
          name: `${prefix}_${id}`,
          type,
          source: p.source,
          address: p.ip,
          ...(p.port !== 0 ? { port: p.port } : {}),
          asNumber: p.asNumber,
          localAsNumber: effAs,
          localAsOverride: p.localAsNumber !== 0,
          internal,
          passive,
          ...(p.sourceAddr === 'UseNodeIP' ? { sourceAddress: nodeIp } : {}),
          multihop: p.ttlSecurity !== 0 ? { ttlSecurity: p.ttlSecurity } : {},
          ...(internal && me.rrClusterId !== '' && p.rrClusterId !== me.rrClusterId
            ? { rrClient: { clusterId: me.rrClusterId } }
            : {}),
          ...(p.password !== undefined ? { password: p.password } : {}),
          nextHop,
          addPath: 'both',
          ...(p.restartTime !== undefined ? { gracefulRestartTime: p.restartTime } : {}),
          ...(p.numAllowLocalAs !== 0 ? { allowLocalAs: p.numAllowLocalAs } : {}),
          ...(p.keepaliveTime !== undefined ? { keepaliveTime: p.keepaliveTime } : {}),
          ...(p.reachableBy !== '' ? { reachableBy: p.reachableBy } : {}),
          importFilters: filterNames(p.filters, 'import', where),
          exportFilters: filterNames(p.filters, 'export', where),
          key,
        });
      }
    }

    const filters: FilterConfig[] = [];
    for (const f of [...snap.bgpFilters].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)))
      for (const dir of ['import', 'export'] as const) {
        const rules = rulesOf(f.metadata.name, dir);
        if (rules.length > 0)
          filters.push({
            filter: f.metadata.name,
            direction: dir,
            functionName: bgpFilterFunctionName(f.metadata.name, dir, fam),
            rules: rules.map((r) => filterRule(r, fam)),
          });
      }

    return {
      family: fam,
      ...(nodeIp !== '' ? { nodeAddress: nodeIp, nodeNetwork: network } : {}),
      ...(bindNodeIp && nodeIp !== '' ? { listenAddress: nodeIp } : {}),
      peers,
      filters,
      exports: exportsFor(fam),
      skipped,
    };
  };

  // ---- exports (bird_aggr / bird_ipam templates, routes.go) --------------------------------
  const svc = serviceRoutes(snap, nodeName, globalCfg, env, {
    ...me.labels,
    ...snap.kubernetes.nodeLabels.get(nodeName),
  });
  const cidrKey = (c: string): string => c.replace('/', '-');
  const byKey = <T extends { cidr: string }>(xs: T[]): T[] =>
    xs.sort((a, b) => (cidrKey(a.cidr) < cidrKey(b.cidr) ? -1 : 1));
  const exportsFor = (fam: Family): FamilyExports => {
    const blocks: BlockExport[] = byKey(
      snap.blockAffinities
        // Only confirmed affinities reach confd: a pending claim is not yet this node's block.
        .filter(
          (a) =>
            a.spec.node === nodeName &&
            a.spec.state === 'confirmed' &&
            a.spec.deleted !== 'true' &&
            (a.spec.type ?? 'host') === 'host',
        )
        .filter((a) => familyOf(a.spec.cidr) === fam)
        .map((a) => ({ cidr: a.spec.cidr, state: 'confirmed' as const })),
    );
    const pools: PoolExport[] = byKey(
      snap.ipPools
        .filter((p) => familyOf(p.spec.cidr) === fam)
        .map((p) => ({
          cidr: p.spec.cidr,
          ipipMode: encapModeOf(p.spec.ipipMode),
          vxlanMode: encapModeOf(p.spec.vxlanMode),
          disableBGPExport: p.spec.disableBGPExport ?? false,
        })),
    );
    const ofFam = (xs: readonly string[]): string[] =>
      xs.filter((c) => familyOf(c) === fam).sort((a, b) => (cidrKey(a) < cidrKey(b) ? -1 : 1));
    const lbCidrs = (globalCfg?.spec.serviceLoadBalancerIPs ?? [])
      .map((b) => b.cidr ?? '')
      .filter((c) => c !== '');
    return {
      blocks,
      pools,
      serviceRoutes: ofFam(svc.advertised),
      kernelRejects: ofFam(svc.rejected),
      reflectedLoadBalancerCidrs: me.rrClusterId !== '' ? lbCidrs.filter((c) => familyOf(c) === fam) : [],
      prefixAdvertisements: prefixAdvertisements(
        nodeCfg?.spec.prefixAdvertisements !== undefined ? nodeCfg : globalCfg,
        fam,
      ),
    };
  };

  let routerId: string;
  const rid = env.CALICO_ROUTER_ID ?? '';
  if (rid === 'hash') routerId = hashToIPv4(nodeName);
  else if (rid !== '') routerId = rid;
  else {
    routerId = me.ipv4;
    if (routerId === '')
      warnings.push(`node ${nodeName} has no IPv4 address and CALICO_ROUTER_ID is not set: no router ID`);
  }
  const severity = (
    nodeCfg?.spec.logSeverityScreen ??
    globalCfg?.spec.logSeverityScreen ??
    'info'
  ).toLowerCase();

  return {
    node: nodeName,
    routerId,
    asNumber: nodeAs,
    ...((nodeListenPorts.get(nodeName) ?? globalListenPort) !== 0
      ? { listenPort: listenPortOf(nodeName) }
      : {}),
    ...(me.rrClusterId !== '' ? { routeReflectorClusterId: me.rrClusterId } : {}),
    meshEnabled,
    logLevel: severity === 'debug' || severity === 'info' ? severity : 'none',
    ignoredInterfaces: globalCfg?.spec.ignoredInterfaces ?? [],
    ipv4: family(4),
    ipv6: family(6),
    warnings,
  };
}

/** Calico's filterStatement (template_funcs.go) in structured form. */
function filterRule(r: BGPFilterRule, fam: Family): FilterRuleConfig {
  let prefixLength: [number, number] | undefined;
  if (r.cidr !== undefined && r.cidr !== '' && r.prefixLength !== undefined) {
    const len = Number(r.cidr.split('/')[1]);
    prefixLength = [
      Math.max(len, r.prefixLength.min ?? len),
      Math.min(fam === 4 ? 32 : 128, r.prefixLength.max ?? (fam === 4 ? 32 : 128)),
    ];
  }
  return {
    action: r.action === 'Accept' ? 'accept' : 'reject',
    ...(r.cidr !== undefined && r.cidr !== '' ? { cidr: r.cidr } : {}),
    ...(r.matchOperator !== undefined ? { operator: r.matchOperator } : {}),
    ...(prefixLength !== undefined ? { prefixLength } : {}),
    ...(r.source !== undefined ? { source: r.source } : {}),
    ...(r.interface !== undefined && r.interface !== '' ? { interface: r.interface } : {}),
  };
}

/** client.go getPrefixAdvertisementsKVPair: community names resolved, values deduplicated and sorted. */
function prefixAdvertisements(cfg: BGPConfiguration | undefined, fam: Family): PrefixAdvertisement[] {
  const defined = cfg?.spec.communities ?? [];
  return (cfg?.spec.prefixAdvertisements ?? [])
    .filter((p) => familyOf(p.cidr) === fam)
    .map((p) => {
      const set = new Set<string>();
      for (const c of p.communities) {
        if (/^\d+:\d+$|^\d+:\d+:\d+$/.test(c)) set.add(c);
        else {
          const d = defined.find((x) => x.name === c);
          if (d !== undefined) set.add(d.value);
        }
      }
      return { cidr: p.cidr, communities: [...set].sort() };
    });
}

/** Encapsulation mode names as Calico's API spells them ('' and unknown mean Never, as in IPPoolV3ToV1). */
export function encapModeOf(m: string | undefined): PoolExport['ipipMode'] {
  return m === 'Always' || m === 'CrossSubnet' ? m : 'Never';
}
