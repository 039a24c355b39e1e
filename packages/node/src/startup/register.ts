// This node's Node resource: created or updated with its BGP addresses, AS number and
// Kubernetes reference (Calico's Run, startup.go:153-231), everything else on it kept
// (labels, routeReflectorClusterID, tunnel addresses). The write is a compare-and-swap:
// when another writer got in first, the Node is read again and the same decisions are made
// on what is there now.
import type { Datastore, Node } from '@tabby/datastore';
import {
  AlreadyExistsError,
  API_VERSION,
  ConflictError,
  NotFoundError,
  RetriesExhaustedError,
} from '@tabby/datastore';
import type { Logger } from '@tabby/ipip';
import type { HostAddresses } from './addresses.js';
import { configureAddresses } from './addresses.js';
import type { AddressConflict } from './errors.js';
import { AddressConflictError, AutodetectionError, NoAddressError } from './errors.js';
import { addressPart } from './ipnet.js';
import type { Settings } from './settings.js';

export interface RegisterOptions {
  readonly datastore: Datastore;
  readonly settings: Settings;
  readonly host: HostAddresses;
  readonly log: Logger;
  /** Read-decide-write rounds before giving up on a Node that keeps changing. [Default: 10] */
  readonly maxAttempts?: number;
}

export interface Registration {
  /**
   * The Node as stored; undefined only with CALICO_NETWORKING_BACKEND=none when no Node
   * exists and nothing asked for one (Calico does not create it then either).
   */
  readonly node: Node | undefined;
  readonly written: 'created' | 'updated' | 'unchanged';
}

function newNode(name: string): Node {
  return { apiVersion: API_VERSION, kind: 'Node', metadata: { name }, spec: {} };
}

/** An empty spec.bgp is not valid: Calico sets it to nil (startup.go:525). */
function tidy(node: Node): void {
  if (node.spec.bgp !== undefined && Object.keys(node.spec.bgp).length === 0) delete node.spec.bgp;
}

/**
 * Calico's checkConflictingNodes (startup.go:1142): other Nodes with this node's IPv4 or
 * IPv6 address. A changed address of this very Node is only worth a warning (it could be
 * two hosts with one name, or an address that really changed).
 */
export async function conflictingNodes(ds: Datastore, node: Node, log: Logger): Promise<AddressConflict[]> {
  const ours = {
    4: addressPart(node.spec.bgp?.ipv4Address ?? ''),
    6: addressPart(node.spec.bgp?.ipv6Address ?? ''),
  };
  const out: AddressConflict[] = [];
  for (const other of (await ds.list('Node')).items) {
    if (other.spec.bgp === undefined) continue;
    for (const family of [4, 6] as const) {
      const mine = ours[family];
      const theirs = addressPart(
        (family === 4 ? other.spec.bgp.ipv4Address : other.spec.bgp.ipv6Address) ?? '',
      );
      if (mine === undefined || theirs === undefined) continue;
      if (other.metadata.name === node.metadata.name) {
        if (mine !== theirs)
          log.warn(
            { node: other.metadata.name, original: theirs, updated: mine, family },
            `IPv${family} address has changed; this could happen if there are multiple nodes with the same name`,
          );
      } else if (mine === theirs) out.push({ family, address: mine, node: other.metadata.name });
    }
  }
  return out;
}

/**
 * Calico's clearNodeIPs (startup.go:514): after an autodetection failure or a conflict on an
 * existing Node, the stale autodetected address is removed so another node may take it. A
 * failure to write is only logged: start-up is failing anyway.
 */
async function clearAddresses(
  ds: Datastore,
  node: Node,
  clear4: boolean,
  clear6: boolean,
  log: Logger,
): Promise<void> {
  if (!clear4 && !clear6) return;
  const bgp = node.spec.bgp;
  if (bgp !== undefined) {
    if (clear4) {
      log.info({ address: bgp.ipv4Address }, 'clearing the out-of-date IPv4 address from this node');
      delete bgp.ipv4Address;
    }
    if (clear6) {
      log.info({ address: bgp.ipv6Address }, 'clearing the out-of-date IPv6 address from this node');
      delete bgp.ipv6Address;
    }
  }
  tidy(node);
  try {
    await ds.update(node);
  } catch (e) {
    log.warn({ err: e }, 'failed to clear node addresses');
  }
}

/** Creates or updates this node's Node. Throws the typed errors of errors.ts, and the datastore's. */
export async function registerNode(opts: RegisterOptions): Promise<Registration> {
  const { datastore: ds, settings, log } = opts;
  const name = settings.nodeName;
  const attempts = opts.maxAttempts ?? 10;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const stored = await ds.get('Node', name);
    if (stored === undefined) log.info({ node: name }, 'building a new Node resource');
    const node = stored === undefined ? newNode(name) : structuredClone(stored);
    let needsUpdate = false;

    // With no networking backend the Node carries no BGP details (startup.go:374, 862).
    if (settings.networkingBackend !== 'none') {
      node.spec.bgp ??= {};
      let changed: boolean;
      try {
        changed = configureAddresses(node.spec, settings, opts.host, log);
      } catch (e) {
        // startup.go:381: a Node that had an autodetected address loses it.
        if (e instanceof AutodetectionError && stored !== undefined)
          await clearAddresses(
            ds,
            node,
            settings.ipv4.mode === 'autodetect',
            settings.ipv6.mode === 'autodetect',
            log,
          );
        throw e;
      }
      if (node.spec.bgp.ipv4Address === undefined && node.spec.bgp.ipv6Address === undefined)
        throw new NoAddressError(name);
      if (changed && !settings.disableNodeIpCheck) {
        const conflicts = await conflictingNodes(ds, node, log);
        if (conflicts.length > 0) {
          // startup.go:416: only an autodetected address is cleared; a configured one stays.
          if (stored !== undefined)
            await clearAddresses(
              ds,
              node,
              settings.ipv4.mode === 'autodetect' && conflicts.some((c) => c.family === 4),
              settings.ipv6.mode === 'autodetect' && conflicts.some((c) => c.family === 6),
              log,
            );
          throw new AddressConflictError(name, conflicts);
        }
      }
      needsUpdate = changed;
      // configureASNumber (startup.go:859): AS set means written, every time.
      if (settings.asNumber !== undefined) {
        node.spec.bgp.asNumber = settings.asNumber;
        needsUpdate = true;
      }
    }
    // configureNodeRef (startup.go:491).
    if (settings.kubernetesNodeRef !== undefined) {
      node.spec.orchRefs = [{ nodeName: settings.kubernetesNodeRef, orchestrator: 'k8s' }];
      needsUpdate = true;
    }
    if (!needsUpdate) return { node: stored, written: 'unchanged' };
    tidy(node);
    try {
      const written = (stored === undefined ? await ds.create(node) : await ds.update(node)) as Node;
      log.info(
        {
          node: name,
          ipv4: written.spec.bgp?.ipv4Address,
          ipv6: written.spec.bgp?.ipv6Address,
          asNumber: written.spec.bgp?.asNumber,
        },
        stored === undefined ? 'created the Node' : 'updated the Node',
      );
      return { node: written, written: stored === undefined ? 'created' : 'updated' };
    } catch (e) {
      if (!(e instanceof ConflictError || e instanceof AlreadyExistsError || e instanceof NotFoundError))
        throw e;
      last = e;
      log.info(
        { node: name, attempt, err: e },
        'the Node changed while it was being written; reading it again',
      );
    }
  }
  throw new RetriesExhaustedError(`writing Node ${name}`, attempts, last);
}
