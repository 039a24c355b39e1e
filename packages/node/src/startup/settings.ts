// The start-up settings: calico-node's environment variables (startup.go, utils.go,
// startup_linux.go at v3.31.7), overlaid by a YAML file and then by command-line flags.
// `resolveSettings` is a pure function of its inputs: it returns the settings, or every
// invalid value at once, each naming its variable, file field or flag.
//
// Precedence: flag, then file, then environment, then Calico's default. An empty value is
// the same as an absent one. Every value is checked here, before anything is written
// (Calico checks some only when it gets to them, and takes any unknown boolean as true).
import type { EncapMode } from '@tabby/datastore';
import {
  check,
  formatCidr,
  parseAsNumber,
  parseCidr,
  parseIp,
  parseSelector,
  readManifest,
  s,
  SelectorSyntaxError,
} from '@tabby/datastore';
import type { Schema } from '@tabby/datastore';
import type { AutodetectionMethod } from './autodetect.js';
import { parseAutodetectionMethod } from './autodetect.js';
import type { SettingIssue, SettingSource } from './errors.js';
import { describeSource, SettingsError } from './errors.js';
import type { IpNet } from './ipnet.js';
import { parseIpNet } from './ipnet.js';

export type Env = Readonly<Record<string, string | undefined>>;

export type NetworkingBackend = 'bird' | 'vxlan' | 'none';

/** IP / IP6: unset, `autodetect`, `none`, or an address (with or without prefix length). */
export type AddressSetting =
  | { readonly mode: 'unset' }
  | { readonly mode: 'autodetect' }
  | { readonly mode: 'none' }
  | { readonly mode: 'address'; readonly text: string; readonly net: IpNet };

/** What the default pool of one family is created with, when there is no pool of that family. */
export interface PoolSettings {
  /** False when CALICO_IPVxPOOL_CIDR is `none`: no default pool of this family. */
  readonly enabled: boolean;
  /** The network (host bits cleared); undefined: kubeadm's podSubnet, else Calico's default. */
  readonly cidr: string | undefined;
  readonly blockSize: number;
  readonly ipipMode: EncapMode;
  readonly vxlanMode: EncapMode;
  readonly natOutgoing: boolean;
  /** Undefined: all nodes. */
  readonly nodeSelector: string | undefined;
  readonly disableBGPExport: boolean;
  /** The pool settings given explicitly (described), for the warning when pools exist already. */
  readonly given: readonly string[];
}

export interface Settings {
  readonly nodeName: string;
  /** Where the node name came from (NODENAME, the nodename file, HOSTNAME, the host name). */
  readonly nodeNameSource: string;
  /** CALICO_NODENAME_FILE: start-up writes the node name here, and reads it on the next start. */
  readonly nodenameFile: string;
  /** CALICO_K8S_NODE_REF: the Kubernetes Node's name when it differs from the node name. */
  readonly kubernetesNodeRef: string | undefined;
  /** The Kubernetes Node to read (kubernetes-internal-ip): kubernetesNodeRef, else the node name. */
  readonly kubernetesNodeName: string;
  readonly networkingBackend: NetworkingBackend;
  readonly ipv4: AddressSetting;
  readonly ipv6: AddressSetting;
  readonly ipv4AutodetectionMethod: AutodetectionMethod;
  readonly ipv6AutodetectionMethod: AutodetectionMethod;
  /** AS: this node's AS number; undefined leaves the Node's (or the global default) alone. */
  readonly asNumber: number | undefined;
  /** CALICO_ROUTER_ID: an IPv4 address or `hash`; undefined: the node's IPv4 address. */
  readonly routerId: string | undefined;
  readonly disableNodeIpCheck: boolean;
  /** FELIX_IPV6SUPPORT (default true): no default IPv6 pool when false. */
  readonly ipv6Support: boolean;
  readonly noDefaultPools: boolean;
  readonly ipv4Pool: PoolSettings;
  readonly ipv6Pool: PoolSettings;
}

type FieldType = 'string' | 'int' | 'bool' | 'intOrString';

interface FieldDef {
  /** Calico's environment variable. */
  readonly env: string;
  /** Dotted path in the YAML file. */
  readonly file: string;
  /** Command-line flag, without the leading dashes. */
  readonly flag: string;
  /** The YAML type the file may use (flags and the environment are always text). */
  readonly type: FieldType;
}

/** Every start-up setting: its variable, file field and flag. */
export const SETTINGS_FIELDS = {
  // --node, as tabby-node and tabby render already call it
  nodeName: { env: 'NODENAME', file: 'nodeName', flag: 'node', type: 'string' },
  nodenameFile: { env: 'CALICO_NODENAME_FILE', file: 'nodenameFile', flag: 'nodename-file', type: 'string' },
  kubernetesNodeRef: {
    env: 'CALICO_K8S_NODE_REF',
    file: 'kubernetesNodeRef',
    flag: 'k8s-node-ref',
    type: 'string',
  },
  networkingBackend: {
    env: 'CALICO_NETWORKING_BACKEND',
    file: 'networkingBackend',
    flag: 'networking-backend',
    type: 'string',
  },
  ip: { env: 'IP', file: 'ip', flag: 'ip', type: 'string' },
  ip6: { env: 'IP6', file: 'ip6', flag: 'ip6', type: 'string' },
  ipAutodetectionMethod: {
    env: 'IP_AUTODETECTION_METHOD',
    file: 'ipAutodetectionMethod',
    flag: 'ip-autodetection-method',
    type: 'string',
  },
  ip6AutodetectionMethod: {
    env: 'IP6_AUTODETECTION_METHOD',
    file: 'ip6AutodetectionMethod',
    flag: 'ip6-autodetection-method',
    type: 'string',
  },
  asNumber: { env: 'AS', file: 'asNumber', flag: 'as', type: 'intOrString' },
  routerId: { env: 'CALICO_ROUTER_ID', file: 'routerId', flag: 'router-id', type: 'string' },
  disableNodeIpCheck: {
    env: 'DISABLE_NODE_IP_CHECK',
    file: 'disableNodeIpCheck',
    flag: 'disable-node-ip-check',
    type: 'bool',
  },
  ipv6Support: { env: 'FELIX_IPV6SUPPORT', file: 'ipv6Support', flag: 'ipv6-support', type: 'bool' },
  noDefaultPools: { env: 'NO_DEFAULT_POOLS', file: 'noDefaultPools', flag: 'no-default-pools', type: 'bool' },
  ipv4PoolCidr: { env: 'CALICO_IPV4POOL_CIDR', file: 'ipv4Pool.cidr', flag: 'ipv4pool-cidr', type: 'string' },
  ipv4PoolBlockSize: {
    env: 'CALICO_IPV4POOL_BLOCK_SIZE',
    file: 'ipv4Pool.blockSize',
    flag: 'ipv4pool-block-size',
    type: 'int',
  },
  ipv4PoolIpip: {
    env: 'CALICO_IPV4POOL_IPIP',
    file: 'ipv4Pool.ipipMode',
    flag: 'ipv4pool-ipip',
    type: 'string',
  },
  ipv4PoolVxlan: {
    env: 'CALICO_IPV4POOL_VXLAN',
    file: 'ipv4Pool.vxlanMode',
    flag: 'ipv4pool-vxlan',
    type: 'string',
  },
  ipv4PoolNatOutgoing: {
    env: 'CALICO_IPV4POOL_NAT_OUTGOING',
    file: 'ipv4Pool.natOutgoing',
    flag: 'ipv4pool-nat-outgoing',
    type: 'bool',
  },
  ipv4PoolNodeSelector: {
    env: 'CALICO_IPV4POOL_NODE_SELECTOR',
    file: 'ipv4Pool.nodeSelector',
    flag: 'ipv4pool-node-selector',
    type: 'string',
  },
  ipv4PoolDisableBgpExport: {
    env: 'CALICO_IPV4POOL_DISABLE_BGP_EXPORT',
    file: 'ipv4Pool.disableBGPExport',
    flag: 'ipv4pool-disable-bgp-export',
    type: 'bool',
  },
  ipv6PoolCidr: { env: 'CALICO_IPV6POOL_CIDR', file: 'ipv6Pool.cidr', flag: 'ipv6pool-cidr', type: 'string' },
  ipv6PoolBlockSize: {
    env: 'CALICO_IPV6POOL_BLOCK_SIZE',
    file: 'ipv6Pool.blockSize',
    flag: 'ipv6pool-block-size',
    type: 'int',
  },
  ipv6PoolVxlan: {
    env: 'CALICO_IPV6POOL_VXLAN',
    file: 'ipv6Pool.vxlanMode',
    flag: 'ipv6pool-vxlan',
    type: 'string',
  },
  ipv6PoolNatOutgoing: {
    env: 'CALICO_IPV6POOL_NAT_OUTGOING',
    file: 'ipv6Pool.natOutgoing',
    flag: 'ipv6pool-nat-outgoing',
    type: 'bool',
  },
  ipv6PoolNodeSelector: {
    env: 'CALICO_IPV6POOL_NODE_SELECTOR',
    file: 'ipv6Pool.nodeSelector',
    flag: 'ipv6pool-node-selector',
    type: 'string',
  },
  ipv6PoolDisableBgpExport: {
    env: 'CALICO_IPV6POOL_DISABLE_BGP_EXPORT',
    file: 'ipv6Pool.disableBGPExport',
    flag: 'ipv6pool-disable-bgp-export',
    type: 'bool',
  },
} as const satisfies Record<string, FieldDef>;

type FieldKey = keyof typeof SETTINGS_FIELDS;

/** The one setting read from the environment only: the node name's last fallback but one. */
export const HOSTNAME_ENV = 'HOSTNAME';

/** Calico's defaults (startup.go:56, utils.go:38). */
export const DEFAULT_NODENAME_FILE = '/var/lib/calico/nodename';
export const DEFAULT_IPV4_POOL_CIDR = '192.168.0.0/16';
export const DEFAULT_IPV4_POOL_BLOCK_SIZE = 26;
export const DEFAULT_IPV6_POOL_BLOCK_SIZE = 122;

export interface SettingsInput {
  readonly env: Env;
  /** The YAML file's text and its path (for messages). */
  readonly file?: { readonly path: string; readonly text: string };
  /** Flag name (without dashes) → value, as the command line gave them. */
  readonly flags?: Readonly<Record<string, string>>;
  /** The nodename file's contents, undefined when there is no such file (throws on other errors). */
  readonly readNodenameFile: (path: string) => string | undefined;
  /** The OS host name (os.hostname()). */
  readonly hostname: () => string;
}

export type SettingsResult =
  { readonly ok: true; readonly settings: Settings } | { readonly ok: false; readonly error: SettingsError };

/** The YAML file's schema, built from SETTINGS_FIELDS (nested at the dots). */
function fileSchema(): Schema<Record<string, unknown>> {
  const leaf = (t: FieldType): Schema<unknown> =>
    t === 'int' ? s.int() : t === 'bool' ? s.bool() : t === 'intOrString' ? s.intOrString() : s.string();
  const groups = new Map<string, Record<string, ReturnType<typeof s.optional>>>();
  const top: Record<string, ReturnType<typeof s.optional>> = {};
  for (const def of Object.values(SETTINGS_FIELDS) as FieldDef[]) {
    const [head, tail] = def.file.split('.') as [string, string | undefined];
    if (tail === undefined) top[head] = s.optional(leaf(def.type));
    else {
      const g = groups.get(head) ?? {};
      g[tail] = s.optional(leaf(def.type));
      groups.set(head, g);
    }
  }
  for (const [head, props] of groups) top[head] = s.optional(s.object(props));
  return s.object(top);
}

const BOOL_FALSE = ['false', '0', 'no', 'n', 'f'];
const BOOL_TRUE = ['true', '1', 'yes', 'y', 't'];

/** A parsed value, or why the text is not one. */
type Parsed<T> = { readonly value: T } | { readonly reason: string };
const ok = <T>(value: T): Parsed<T> => ({ value });
const bad = (reason: string): Parsed<never> => ({ reason });

/** Calico's evaluateENVBool (startup.go:839), except that a value it does not know is refused, not true. */
function parseBool(v: string): Parsed<boolean> {
  const l = v.toLowerCase();
  if (BOOL_FALSE.includes(l)) return ok(false);
  if (BOOL_TRUE.includes(l)) return ok(true);
  return bad(`${JSON.stringify(v)} is not a boolean (true/false, 1/0, yes/no, y/n, t/f)`);
}

/** CALICO_IPVxPOOL_IPIP / _VXLAN (startup.go:1085). */
function parseEncapMode(v: string): Parsed<EncapMode> {
  switch (v.toLowerCase()) {
    case 'off':
    case 'never':
      return ok('Never');
    case 'crosssubnet':
    case 'cross-subnet':
      return ok('CrossSubnet');
    case 'always':
      return ok('Always');
    default:
      return bad(`${JSON.stringify(v)} is not an encapsulation mode (Always, CrossSubnet, Never)`);
  }
}

function parseAddress(v: string, family: 4 | 6): Parsed<AddressSetting> {
  if (v === 'autodetect') return ok({ mode: 'autodetect' });
  if (v === 'none') return ok({ mode: 'none' });
  const net = parseIpNet(v);
  if (net === undefined || net.address.family !== family)
    return bad(
      `${JSON.stringify(v)} is not an IPv${family} address ` +
        `(${family === 4 ? 'a.b.c.d or a.b.c.d/len' : 'an IPv6 address, with or without /len'}), autodetect or none`,
    );
  return ok({ mode: 'address', text: v, net });
}

function parseMethod(v: string, family: 4 | 6): Parsed<AutodetectionMethod> {
  const m = parseAutodetectionMethod(v, family);
  return typeof m === 'string' ? bad(m) : ok(m);
}

const isEnabled = (m: EncapMode): boolean => m !== 'Never';
const FIRST_FOUND: AutodetectionMethod = { kind: 'first-found' };

class Reader {
  readonly issues: SettingIssue[] = [];
  constructor(
    private readonly env: Env,
    private readonly file: Record<string, unknown>,
    private readonly filePath: string,
    private readonly flags: Readonly<Record<string, string>>,
  ) {}

  /** The value as text and where it came from; undefined when absent or empty everywhere. */
  raw(key: FieldKey): { value: string; source: SettingSource } | undefined {
    const def: FieldDef = SETTINGS_FIELDS[key];
    const flag = this.flags[def.flag];
    if (flag !== undefined && flag !== '') return { value: flag, source: { kind: 'flag', name: def.flag } };
    const [head, tail] = def.file.split('.') as [string, string | undefined];
    const outer = this.file[head];
    const v = tail === undefined ? outer : (outer as Record<string, unknown> | undefined)?.[tail];
    // The file was checked against fileSchema: a leaf is a string, a number or a boolean.
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
      if (v !== '')
        return {
          value: typeof v === 'string' ? v : String(v),
          source: { kind: 'file', name: def.file, file: this.filePath },
        };
    const e = this.env[def.env];
    if (e !== undefined && e !== '') return { value: e, source: { kind: 'env', name: def.env } };
    return undefined;
  }

  /** Parses the value if given; records the problem (naming its source) and returns the default otherwise. */
  get<T>(key: FieldKey, parse: (v: string) => Parsed<T>, dflt: T): T {
    const r = this.raw(key);
    if (r === undefined) return dflt;
    const p = parse(r.value);
    if ('reason' in p) {
      this.issues.push({ source: r.source, reason: p.reason });
      return dflt;
    }
    return p.value;
  }

  /** A text value checked by `valid` (returns a reason when it is not). */
  text(key: FieldKey, valid: (v: string) => string | undefined): string | undefined {
    const r = this.raw(key);
    if (r === undefined) return undefined;
    const why = valid(r.value);
    if (why !== undefined) {
      this.issues.push({ source: r.source, reason: why });
      return undefined;
    }
    return r.value;
  }

  problem(
    key: FieldKey,
    reason: string,
    fallback: SettingSource = { kind: 'default', name: SETTINGS_FIELDS[key].env },
  ): void {
    this.issues.push({ source: this.raw(key)?.source ?? fallback, reason });
  }
}

function validSelector(v: string): string | undefined {
  try {
    parseSelector(v);
    return undefined;
  } catch (e) {
    if (e instanceof SelectorSyntaxError) return `bad selector ${JSON.stringify(v)}: ${e.message}`;
    throw e;
  }
}

function readPool(r: Reader, family: 4 | 6): PoolSettings {
  const k =
    family === 4
      ? {
          cidr: 'ipv4PoolCidr',
          blockSize: 'ipv4PoolBlockSize',
          vxlan: 'ipv4PoolVxlan',
          nat: 'ipv4PoolNatOutgoing',
          selector: 'ipv4PoolNodeSelector',
          noExport: 'ipv4PoolDisableBgpExport',
        }
      : {
          cidr: 'ipv6PoolCidr',
          blockSize: 'ipv6PoolBlockSize',
          vxlan: 'ipv6PoolVxlan',
          nat: 'ipv6PoolNatOutgoing',
          selector: 'ipv6PoolNodeSelector',
          noExport: 'ipv6PoolDisableBgpExport',
        };
  const keys = Object.values(k) as FieldKey[];
  if (family === 4) keys.push('ipv4PoolIpip');
  const cidrText = r.get<string | undefined>(
    k.cidr as FieldKey,
    (v) => {
      if (v === 'none') return ok('none');
      // Go's ParseCIDR clears host bits (startup.go:995): 10.0.0.1/16 is the pool 10.0.0.0/16.
      const c = parseCidr(v);
      return c === undefined || c.family !== family
        ? bad(`${JSON.stringify(v)} is not an IPv${family} CIDR (or none)`)
        : ok(formatCidr(c));
    },
    undefined,
  );
  const [lo, hi] = family === 4 ? [20, 32] : [116, 128];
  const blockSize = r.get(
    k.blockSize as FieldKey,
    (v) => {
      // strconv.Atoi, then validateBlockSize (startup.go:796, 806).
      if (!/^[+-]?\d+$/.test(v)) return bad(`${JSON.stringify(v)} is not an integer`);
      const n = Number(v);
      return n < lo || n > hi
        ? bad(`block size ${n} is not between ${lo} and ${hi} for IPv${family}`)
        : ok(n);
    },
    family === 4 ? DEFAULT_IPV4_POOL_BLOCK_SIZE : DEFAULT_IPV6_POOL_BLOCK_SIZE,
  );
  const ipipMode: EncapMode = family === 4 ? r.get('ipv4PoolIpip', parseEncapMode, 'Never') : 'Never';
  const vxlanMode = r.get<EncapMode>(k.vxlan as FieldKey, parseEncapMode, 'Never');
  const nodeSelector = r.text(k.selector as FieldKey, validSelector);
  const given = keys.flatMap((key) => {
    const raw = r.raw(key);
    return raw === undefined ? [] : [`${describeSource(raw.source)}=${raw.value}`];
  });
  const pool: PoolSettings = {
    enabled: cidrText !== 'none',
    cidr: cidrText === 'none' ? undefined : cidrText,
    blockSize,
    ipipMode,
    vxlanMode,
    // Calico: NAT outgoing on by default for IPv4, off for IPv6 (startup.go:1062, 1070).
    natOutgoing: r.get(k.nat as FieldKey, parseBool, family === 4),
    nodeSelector,
    disableBGPExport: r.get(k.noExport as FieldKey, parseBool, false),
    given,
  };
  // What creating the pool would fail on, said before anything is written.
  if (isEnabled(ipipMode) && isEnabled(vxlanMode))
    r.problem(
      k.vxlan as FieldKey,
      `cannot be ${vxlanMode} while CALICO_IPV4POOL_IPIP is ${ipipMode}: a pool has one encapsulation`,
    );
  const c = pool.cidr === undefined ? undefined : parseCidr(pool.cidr);
  if (c !== undefined && c.len > blockSize)
    r.problem(
      k.cidr as FieldKey,
      `the pool /${c.len} is smaller than one block (/${blockSize}, ${SETTINGS_FIELDS[k.blockSize as FieldKey].env})`,
    );
  return pool;
}

function readNodeName(
  r: Reader,
  input: SettingsInput,
  nodenameFile: string,
): { name: string; source: SettingSource } | undefined {
  // utils.go:114: NODENAME (trimmed), the nodename file, HOSTNAME (lower-cased), the host
  // name (lower-cased). The file's contents are trimmed too: Calico writes them without a
  // newline, an editor adds one.
  const explicit = r.raw('nodeName');
  if (explicit !== undefined && explicit.value.trim() !== '')
    return { name: explicit.value.trim(), source: explicit.source };
  let stored: string | undefined;
  try {
    stored = input.readNodenameFile(nodenameFile)?.trim();
  } catch (e) {
    r.issues.push({
      source: { kind: 'nodename-file', name: nodenameFile },
      reason: `cannot be read: ${e instanceof Error ? e.message : String(e)}`,
    });
    return undefined;
  }
  if (stored !== undefined && stored !== '')
    return { name: stored, source: { kind: 'nodename-file', name: nodenameFile } };
  const h = input.env[HOSTNAME_ENV]?.trim().toLowerCase();
  if (h !== undefined && h !== '') return { name: h, source: { kind: 'env', name: HOSTNAME_ENV } };
  return { name: input.hostname().trim().toLowerCase(), source: { kind: 'hostname' } };
}

const nameSchema = s.string({ format: 'dnsSubdomain' });

/** The start-up settings from the environment, the YAML file and the flags. */
export function resolveSettings(input: SettingsInput): SettingsResult {
  const issues: SettingIssue[] = [];
  const flags = input.flags ?? {};
  const known = new Set(Object.values(SETTINGS_FIELDS).map((d: FieldDef) => d.flag));
  for (const f of Object.keys(flags))
    if (!known.has(f))
      issues.push({ source: { kind: 'flag', name: f }, reason: 'is not a start-up setting' });

  let file: Record<string, unknown> = {};
  const filePath = input.file?.path ?? '(no file)';
  if (input.file !== undefined) {
    const where = (name: string): SettingSource => ({ kind: 'file', name, file: filePath });
    const docs = readManifest(input.file.text);
    if (docs.length > 1)
      issues.push({ source: where('(document)'), reason: 'holds several YAML documents; give one' });
    const doc = docs[0];
    if (doc !== undefined && doc.errors.length > 0)
      issues.push({ source: where('(document)'), reason: `is not valid YAML: ${doc.errors[0]!.message}` });
    else if (doc !== undefined) {
      const js: unknown = doc.toJS();
      if (js !== null && js !== undefined) {
        const found = check(fileSchema(), js);
        for (const i of found)
          issues.push({ source: where(i.path === '' ? '(document)' : i.path), reason: i.reason });
        if (found.length === 0) file = js as Record<string, unknown>;
      }
    }
  }
  const r = new Reader(input.env, file, filePath, flags);

  const nodenameFile = r.raw('nodenameFile')?.value ?? DEFAULT_NODENAME_FILE;
  const node = readNodeName(r, input, nodenameFile);
  if (node !== undefined) {
    const bad = check(nameSchema, node.name);
    if (node.name === '') r.issues.push({ source: node.source, reason: 'gives an empty node name' });
    else if (bad.length > 0) r.issues.push({ source: node.source, reason: `node name ${bad[0]!.reason}` });
  }
  const kubernetesNodeRef = r.raw('kubernetesNodeRef')?.value;

  const networkingBackend = r.get<NetworkingBackend>(
    'networkingBackend',
    (v) =>
      v === 'bird' || v === 'vxlan' || v === 'none'
        ? ok(v)
        : bad(
            `${JSON.stringify(v)} is not a networking backend (bird: BGP, vxlan: VXLAN only, none: no networking)`,
          ),
    'bird',
  );
  const ipv4 = r.get<AddressSetting>('ip', (v) => parseAddress(v, 4), { mode: 'unset' });
  const ipv6 = r.get<AddressSetting>('ip6', (v) => parseAddress(v, 6), { mode: 'unset' });
  const ipv4AutodetectionMethod = r.get('ipAutodetectionMethod', (v) => parseMethod(v, 4), FIRST_FOUND);
  const ipv6AutodetectionMethod = r.get('ip6AutodetectionMethod', (v) => parseMethod(v, 6), FIRST_FOUND);
  // numorstring.ASNumberFromString: plain or asdot; 0 is no AS.
  const asNumber = r.get<number | undefined>(
    'asNumber',
    (v) => {
      const n = parseAsNumber(v);
      return n === undefined || n === 0
        ? bad(`${JSON.stringify(v)} is not an AS number (1-4294967295, or asdot like 1.10)`)
        : ok(n);
    },
    undefined,
  );
  const routerId = r.text('routerId', (v) =>
    v === 'hash' || parseIp(v)?.family === 4
      ? undefined
      : `${JSON.stringify(v)} is not a router ID (an IPv4 address, or hash to derive one from the node name)`,
  );
  // startup.go:411 compares with "true" exactly.
  const disableNodeIpCheck = r.get(
    'disableNodeIpCheck',
    (v) =>
      v === 'true' ? ok(true) : v === 'false' ? ok(false) : bad(`${JSON.stringify(v)} is not true or false`),
    false,
  );
  const ipv6Support = r.get('ipv6Support', parseBool, true);
  // startup.go:907 lower-cases and compares with "true": anything else would be false there.
  const noDefaultPools = r.get(
    'noDefaultPools',
    (v) =>
      v.toLowerCase() === 'true'
        ? ok(true)
        : v.toLowerCase() === 'false'
          ? ok(false)
          : bad(`${JSON.stringify(v)} is not true or false (Calico takes anything but true as false)`),
    false,
  );
  const ipv4Pool = readPool(r, 4);
  const ipv6Pool = readPool(r, 6);
  if (noDefaultPools)
    for (const key of ['ipv4PoolCidr', 'ipv6PoolCidr'] as const) {
      const c = r.raw(key);
      if (c !== undefined)
        r.problem(
          'noDefaultPools',
          `cannot be true while ${describeSource(c.source)} is set (startup.go:908 refuses the combination)`,
        );
    }

  issues.push(...r.issues);
  if (issues.length > 0 || node === undefined) return { ok: false, error: new SettingsError(issues) };
  return {
    ok: true,
    settings: {
      nodeName: node.name,
      nodeNameSource: describeSource(node.source),
      nodenameFile,
      kubernetesNodeRef,
      kubernetesNodeName: kubernetesNodeRef ?? node.name,
      networkingBackend,
      ipv4,
      ipv6,
      ipv4AutodetectionMethod,
      ipv6AutodetectionMethod,
      asNumber,
      routerId,
      disableNodeIpCheck,
      ipv6Support,
      noDefaultPools,
      ipv4Pool,
      ipv6Pool,
    },
  };
}
