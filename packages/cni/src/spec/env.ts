// The execution protocol's parameters (SPEC.md §2 "Parameters"): CNI_COMMAND and the
// attachment variables, validated as libcni's skel and utils do, with each missing or
// invalid variable named (code 4).
import { isIP } from 'node:net';
import { CniError, ErrorCode } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface PodArgs {
  readonly namespace: string;
  readonly name: string;
}

export interface CniArgs {
  /** K8S_POD_NAMESPACE and K8S_POD_NAME, when both are given. */
  readonly pod?: PodArgs;
  readonly infraContainerId?: string;
  readonly podUid?: string;
  /** `IP`: the address the pod asks for (Calico's IPAM plugin and the CNI conventions' `IP` arg). */
  readonly ip?: string;
  /** Every pair as given, known or not. */
  readonly raw: ReadonlyMap<string, string>;
}

export interface CniEnv {
  readonly command: CniCommand;
  /** Empty for VERSION, STATUS and GC. */
  readonly containerId: string;
  /** Empty when not given (DEL may omit it). */
  readonly netns: string;
  readonly ifname: string;
  readonly args: CniArgs;
  readonly path: readonly string[];
}

// Spec: "Must start with an alphanumeric character, optionally followed by any combination
// of one or more alphanumeric characters, underscore, dot or hyphen".
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const isValidName = (s: string): boolean => NAME.test(s);

/** Linux's dev_valid_name: 1-15 bytes, not . or .., no /, : or whitespace. */
export function interfaceNameProblem(n: string): string | undefined {
  if (n === '') return 'is empty';
  if (Buffer.byteLength(n) > 15) return `is longer than 15 bytes (${JSON.stringify(n)})`;
  if (n === '.' || n === '..') return `must not be ${n}`;
  if (/[/:\s]/.test(n)) return `must not contain /, : or whitespace (${JSON.stringify(n)})`;
  return undefined;
}

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

const KNOWN_ARGS = new Set([
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
  'IP',
]);

/** CNI_ARGS: `K=V` pairs separated by `;` (libcni's LoadArgs: exactly one `=` per pair). */
export function parseCniArgs(text: string): CniArgs {
  const raw = new Map<string, string>();
  if (text === '') return { raw };
  for (const pair of text.split(';')) {
    const kv = pair.split('=');
    if (kv.length !== 2 || kv[0] === '')
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        'invalid CNI_ARGS',
        `${JSON.stringify(pair)} is not a KEY=VALUE pair`,
      );
    raw.set(kv[0]!, kv[1]!);
  }
  let ignoreUnknown = false;
  const iu = raw.get('IgnoreUnknown');
  if (iu !== undefined) {
    const l = iu.toLowerCase();
    if (l === '1' || l === 'true') ignoreUnknown = true;
    else if (l !== '0' && l !== 'false')
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        'invalid CNI_ARGS',
        `IgnoreUnknown must be 1, true, 0 or false, not ${JSON.stringify(iu)}`,
      );
  }
  const unknown = [...raw.keys()].filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length > 0 && !ignoreUnknown)
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      'invalid CNI_ARGS',
      `unknown argument(s) ${unknown.join(', ')} (add IgnoreUnknown=1 to allow them)`,
    );
  const ns = raw.get('K8S_POD_NAMESPACE');
  const pod = raw.get('K8S_POD_NAME');
  // A pod is named by both. One alone is not an error: podman (libnetwork's CNI backend)
  // passes K8S_POD_NAME=<container name> without a namespace; Calico, too, then treats
  // the container as a non-Kubernetes workload (veth named from the container ID).
  const infra = raw.get('K8S_POD_INFRA_CONTAINER_ID');
  const uid = raw.get('K8S_POD_UID');
  // One address, as Calico's IPAM plugin takes it (net.IP: no prefix, no list).
  const ip = raw.get('IP');
  if (ip !== undefined && ip !== '' && isIP(ip) === 0)
    throw new CniError(ErrorCode.InvalidEnvironment, 'invalid CNI_ARGS', `IP=${ip} is not an IP address`);
  return {
    raw,
    ...(ns === undefined || pod === undefined || ns === '' ? {} : { pod: { namespace: ns, name: pod } }),
    ...(infra === undefined || infra === '' ? {} : { infraContainerId: infra }),
    ...(uid === undefined || uid === '' ? {} : { podUid: uid }),
    ...(ip === undefined || ip === '' ? {} : { ip }),
  };
}

/** The command alone: VERSION needs nothing else. */
export function parseCommand(env: Readonly<Record<string, string | undefined>>): CniCommand {
  const c = env['CNI_COMMAND'] ?? '';
  if (c === '')
    throw new CniError(ErrorCode.InvalidEnvironment, 'required env variables [CNI_COMMAND] missing');
  if (!(COMMANDS as readonly string[]).includes(c))
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      'invalid CNI_COMMAND',
      `unknown command ${JSON.stringify(c)}; expected one of ${COMMANDS.join(', ')}`,
    );
  return c as CniCommand;
}

export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = parseCommand(env);
  const get = (k: string) => env[k] ?? '';
  const missing = REQUIRED[command].filter((k) => get(k) === '');
  if (missing.length > 0)
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `required env variables [${missing.join(',')}] missing`,
      `CNI_COMMAND=${command} needs ${REQUIRED[command].join(', ')}`,
    );
  const attachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = attachment ? get('CNI_CONTAINERID') : '';
  if (attachment && !isValidName(containerId))
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      'invalid CNI_CONTAINERID',
      `${JSON.stringify(containerId)} must start with a letter or digit and hold only letters, digits, _ . -`,
    );
  const ifname = attachment ? get('CNI_IFNAME') : '';
  const bad = attachment ? interfaceNameProblem(ifname) : undefined;
  if (bad !== undefined)
    throw new CniError(ErrorCode.InvalidEnvironment, 'invalid CNI_IFNAME', `the name ${bad}`);
  return {
    command,
    containerId,
    netns: attachment ? get('CNI_NETNS') : '',
    ifname,
    args: attachment ? parseCniArgs(get('CNI_ARGS')) : { raw: new Map() },
    path: get('CNI_PATH')
      .split(':')
      .filter((p) => p !== ''),
  };
}
