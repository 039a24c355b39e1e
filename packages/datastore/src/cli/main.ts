// `tabby` datastore commands: apply, validate, get, delete, crds (and ipam, see
// src/ipam/cli.ts). A function of its inputs (argv, env, streams, an opener for the
// backend) so tests drive it with a memory backend; packages/node/bin/tabby.js wires the real
// ones and adds the node commands (render).
import { stringify } from 'yaml';
import { readManifest } from '../resources/manifest.js';
import type { DatastoreConfig } from '../backends/config.js';
import { DatastoreConfigError, datastoreConfig } from '../backends/config.js';
import { allCrds, renderCrd } from '../resources/crds-render.js';
import { KIND_INFO, KINDS } from '../resources/kinds.js';
import type { Kind } from '../resources/kinds.js';
import { parseResource } from '../resources/parse.js';
import type { Backend } from '../store/backend.js';
import { Datastore } from '../store/datastore.js';
import { DatastoreError, ValidationError } from '../store/errors.js';
import { runIpamCommand } from '../ipam/cli.js';

export interface CliIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Reads a file, or stdin for "-". */
  readonly readFile: (path: string) => Promise<string>;
  readonly openBackend: (c: DatastoreConfig) => Promise<Backend>;
  /**
   * Commands other packages add (the node package's `render`), dispatched like ours: each
   * gets the words after its name, less the datastore flags, which are read already.
   */
  readonly commands?: Readonly<Record<string, CliCommand>>;
}

export interface CliCommand {
  /** Its lines in the usage text, indented like ours. */
  readonly usage: string;
  readonly run: (argv: readonly string[], ctx: CliCommandContext) => Promise<number>;
}

export interface CliCommandContext {
  readonly env: CliIo['env'];
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly readFile: (path: string) => Promise<string>;
  /** Opens the datastore the flags and environment name; closed when the command returns. */
  readonly open: () => Promise<Datastore>;
}

export const USAGE = `usage: tabby <command> [flags]

  apply -f FILE        store every resource of a YAML manifest (Calico's apiVersion accepted);
                       all documents are checked first: one bad document stores nothing
  validate -f FILE     check a manifest without storing it
  get KIND [NAME]      print resources (-o yaml|json, -n NAMESPACE)
  delete KIND NAME     delete one resource (-n NAMESPACE)
  crds                 print the CustomResourceDefinitions
  ipam show|check|release
                       IPAM usage, consistency check, release an address

datastore flags (or Calico's environment: DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_*_FILE, KUBECONFIG):
  --datastore-type yaml|etcdv3|kubernetes    --datastore-dir DIR
  --etcd-endpoints URL[,URL]                 --kubeconfig FILE
`;

/** A mistake in the command line: the message and the usage text go to stderr, exit code 2. */
export class UsageError extends Error {}

function usage(io: CliIo): string {
  const extra = Object.values(io.commands ?? {}).map((c) => c.usage);
  if (extra.length === 0) return USAGE;
  const cut = USAGE.indexOf('\ndatastore flags');
  return `${USAGE.slice(0, cut)}${extra.join('')}${USAGE.slice(cut)}`;
}

interface Parsed {
  readonly positional: string[];
  readonly flags: Record<string, string>;
}

const VALUE_FLAGS = new Set([
  'f',
  'filename',
  'o',
  'output',
  'n',
  'namespace',
  'datastore-type',
  'datastore-dir',
  'etcd-endpoints',
  'etcd-prefix',
  'etcd-ca-cert-file',
  'etcd-cert-file',
  'etcd-key-file',
  'kubeconfig',
]);

function parseArgs(argv: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
    if (m === null || a === '-') {
      positional.push(a);
      continue;
    }
    const name = m[1]!;
    if (m[2] !== undefined) flags[name] = m[2];
    else if (VALUE_FLAGS.has(name)) {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      flags[name] = v;
    } else flags[name] = 'true';
  }
  return { positional, flags };
}

const DATASTORE_FLAG = /^--(datastore-[a-z-]+|etcd-[a-z-]+|kubeconfig)(=|$)/;

/** argv without the datastore flags (and their values), which were read already. */
function withoutDatastoreFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = DATASTORE_FLAG.exec(argv[i]!);
    if (m === null) out.push(argv[i]!);
    else if (m[2] === '') i++; // `--flag value`: skip the value too
  }
  return out;
}

/** `ippool`, `IPPool`, `ippools` → IPPool. */
export function kindOf(word: string): Kind {
  const w = word.toLowerCase();
  const k = KINDS.find((k) => k.toLowerCase() === w || KIND_INFO[k].plural === w);
  if (k === undefined)
    throw new UsageError(`unknown kind ${JSON.stringify(word)}; kinds: ${KINDS.join(', ')}`);
  return k;
}

export async function run(io: CliIo): Promise<number> {
  let backend: Backend | undefined;
  try {
    const { positional, flags } = parseArgs(io.argv);
    const [cmd, ...rest] = positional;
    const file = flags['f'] ?? flags['filename'];
    const output = flags['o'] ?? flags['output'] ?? 'yaml';
    const namespace = flags['n'] ?? flags['namespace'];
    const open = async (): Promise<Datastore> => {
      backend = await io.openBackend(datastoreConfig(io.env, flags));
      return new Datastore(backend, {
        onInvalid: (issues) => {
          for (const i of issues) io.stderr(`warning: skipped ${i.resource}: ${i.path}: ${i.reason}\n`);
        },
      });
    };
    switch (cmd) {
      case undefined:
      case 'help':
        io.stdout(usage(io));
        return cmd === undefined ? 2 : 0;
      case 'crds':
        io.stdout(
          allCrds()
            .map((c) => renderCrd(c))
            .join('---\n'),
        );
        return 0;
      case 'validate': {
        if (file === undefined) throw new UsageError('validate needs -f FILE');
        const text = await io.readFile(file);
        const problems: string[] = [];
        let n = 0;
        readManifest(text).forEach((d, i) => {
          const where = `${file} document ${i + 1}`;
          if (d.errors.length > 0)
            return void problems.push(`${where}: is not valid YAML: ${d.errors[0]!.message}`);
          const js: unknown = d.toJS();
          if (js === null || js === undefined) return;
          n++;
          const r = parseResource(js, where);
          if (!r.ok)
            for (const p of r.issues)
              problems.push(`${p.resource}: ${p.path === '' ? '' : `${p.path}: `}${p.reason}`);
        });
        if (problems.length > 0) {
          io.stderr(`${problems.join('\n')}\n`);
          return 1;
        }
        io.stdout(`${n} resource${n === 1 ? '' : 's'} valid\n`);
        return 0;
      }
      case 'apply': {
        if (file === undefined) throw new UsageError('apply needs -f FILE');
        const text = await io.readFile(file);
        const ds = await open();
        for (const r of await ds.applyManifest(text, file === '-' ? 'stdin' : file))
          io.stdout(
            `${r.kind} ${r.metadata.namespace === undefined ? '' : `${r.metadata.namespace}/`}${r.metadata.name} applied\n`,
          );
        return 0;
      }
      case 'get': {
        const [kindWord, name] = rest;
        if (kindWord === undefined) throw new UsageError('get needs a KIND');
        const kind = kindOf(kindWord);
        const ds = await open();
        let items;
        if (name !== undefined) {
          const one = await ds.get(kind, name, namespace);
          if (one === undefined) {
            io.stderr(`${kind} ${name} not found\n`);
            return 1;
          }
          items = [one];
        } else items = (await ds.list(kind, namespace === undefined ? {} : { namespace })).items;
        if (output === 'json')
          io.stdout(
            `${JSON.stringify(name !== undefined ? items[0] : { kind: `${kind}List`, items }, null, 2)}\n`,
          );
        else if (output === 'yaml') io.stdout(items.map((i) => stringify(i)).join('---\n'));
        else throw new UsageError(`-o must be yaml or json, not ${JSON.stringify(output)}`);
        return 0;
      }
      case 'delete': {
        const [kindWord, name] = rest;
        if (kindWord === undefined || name === undefined) throw new UsageError('delete needs KIND NAME');
        const kind = kindOf(kindWord);
        const ds = await open();
        await ds.delete(kind, name, namespace === undefined ? {} : { namespace });
        io.stdout(`${kind} ${name} deleted\n`);
        return 0;
      }
      case 'ipam': {
        await open();
        // The ipam commands parse their own flags: hand them what follows `ipam`, less ours.
        return await runIpamCommand(withoutDatastoreFlags(io.argv.slice(io.argv.indexOf('ipam') + 1)), {
          backend: backend!,
          stdout: { write: io.stdout },
          stderr: { write: io.stderr },
        });
      }
      default: {
        const extra = cmd === undefined ? undefined : io.commands?.[cmd];
        if (extra === undefined) throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
        return await extra.run(withoutDatastoreFlags(io.argv.slice(io.argv.indexOf(cmd) + 1)), {
          env: io.env,
          stdout: io.stdout,
          stderr: io.stderr,
          readFile: io.readFile,
          open,
        });
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`tabby: ${e.message}\n\n${usage(io)}`);
      return 2;
    }
    if (e instanceof ValidationError) {
      io.stderr(`${e.message}\n`);
      return 1;
    }
    if (e instanceof DatastoreError || e instanceof DatastoreConfigError) {
      io.stderr(`tabby: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await backend?.close();
  }
}
