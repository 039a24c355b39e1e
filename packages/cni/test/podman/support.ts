// Podman as the runtime, with everything it writes kept off the host: its containers.conf
// and storage.conf (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF) put images, containers, state,
// events and the runc state under one temp dir, the CNI config and plugin dirs too; the
// containers' cgroups under a parent named for this process, removed at the end. Every
// podman command runs in the test's "node" network namespace (so the plugin's veths and
// routes land there, not in the host's tables) and in a private mount namespace whose
// /var/lib is a tmpfs: root podman writes libcni's result cache (/var/lib/cni) and
// containers/image's blob info cache (/var/lib/containers/cache) there, and neither has a
// setting in Debian 12's podman 4.3. Debian's crun 1.8 refuses hybrid cgroup hosts
// ("cgroups in hybrid mode not supported") even with cgroups disabled, so runc runs them.
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestNetns } from '../kernel-support.js';
import { kernelUnavailable } from '../kernel-support.js';

/** packages/cni/bin, from dist/test/podman/. */
const BIN_DIR = fileURLToPath(new URL('../../../bin/', import.meta.url));
const BUSYBOX = '/bin/busybox';
/** The applets the containers use, as symlinks to busybox. */
const APPLETS = ['sh', 'ip', 'ping', 'sleep', 'cat'];
export const PACKAGES = 'podman runc busybox-static';

/** True when the ELF file at `path` has no PT_INTERP program header (runs without ld.so). */
function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return false; // ELF64 LE
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    closeSync(fd);
  }
}

const runs = (cmd: string, ...args: string[]): boolean => {
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
};

let probe: string | undefined | null = null;

/** Why podman cannot run containers here, or undefined when it can. */
export function podmanUnavailable(): string | undefined {
  if (probe !== null) return probe;
  probe = kernelUnavailable();
  if (probe !== undefined) return probe;
  const install = `(Debian: apt-get install ${PACKAGES})`;
  if (!runs('podman', '--version')) probe = `podman is not installed ${install}`;
  else if (!runs('runc', '--version')) probe = `runc is not installed ${install}`;
  else if (!existsSync(BUSYBOX)) probe = `${BUSYBOX} is missing ${install}`;
  else if (!isStaticElf(BUSYBOX))
    probe = `${BUSYBOX} is dynamically linked (the busybox package); the image needs busybox-static`;
  else if (!runs('unshare', '--mount', 'true')) probe = 'cannot make a mount namespace with unshare';
  return probe;
}

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Removes a cgroup directory and the ones below it (cgroupfs: rmdir only, leaves first). */
function removeCgroupTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  rmdirSync(dir);
}

export interface PodmanOptions {
  /** Private root: config, storage, state, datastore live below it. */
  readonly dir: string;
  /** The node's network namespace, where podman and the plugins run. */
  readonly node: TestNetns;
  /** The CNI conflist (its `name` is the network's). */
  readonly conflist: object;
}

export class Podman {
  /** The cgroup parent of the containers (cgroupfs manager: a path below each hierarchy root). */
  readonly cgroupParent = `/tabby-podman-test-${process.pid}`;
  private readonly env: Record<string, string>;
  private readonly runcRoot: string;

  private constructor(
    private readonly o: PodmanOptions,
    private readonly holder: ChildProcess,
  ) {
    const d = o.dir;
    this.runcRoot = join(d, 'runc');
    this.env = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: d,
      TMPDIR: join(d, 'tmp'),
      CONTAINERS_CONF: join(d, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(d, 'storage.conf'),
    };
  }

  /** Writes the configs and plugin wrappers, then opens the private mount namespace. */
  static async start(o: PodmanOptions): Promise<Podman> {
    const d = o.dir;
    for (const sub of ['tmp', 'cni-bin', 'net.d', 'storage', 'runroot', 'volumes', 'runc'])
      mkdirSync(join(d, sub), { recursive: true });
    const q = JSON.stringify;
    writeFileSync(
      join(d, 'containers.conf'),
      [
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = [${q(join(d, 'cni-bin'))}]`,
        `network_config_dir = ${q(join(d, 'net.d'))}`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'runtime = "runc"',
        `tmp_dir = ${q(join(d, 'tmp'))}`,
        `volume_path = ${q(join(d, 'volumes'))}`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(d, 'storage.conf'),
      [
        '[storage]',
        'driver = "vfs"',
        `graphroot = ${q(join(d, 'storage'))}`,
        `runroot = ${q(join(d, 'runroot'))}`,
        '',
      ].join('\n'),
    );
    // libcni runs plugins by type from cni_plugin_dirs: small wrappers around our bin/*.js
    for (const p of ['tabby', 'tabby-ipam']) {
      const f = join(d, 'cni-bin', p);
      writeFileSync(f, `#!/bin/sh\nexec ${q(process.execPath)} ${q(join(BIN_DIR, `${p}.js`))} "$@"\n`);
      chmodSync(f, 0o755);
    }
    writeFileSync(join(d, 'net.d', 'tabby.conflist'), JSON.stringify(o.conflist, null, 2));

    // The mount namespace lives as long as this holder (it exits when our end of its stdin closes).
    const holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount -t tmpfs -o mode=0755,size=64m tabby-podman-var-lib /var/lib && echo ready && exec cat >/dev/null',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      let err = '';
      holder.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      holder.stdout.setEncoding('utf8').once('data', () => resolve());
      holder.once('exit', (c) => reject(new Error(`the mount namespace holder exited (${c}): ${err}`)));
      holder.once('error', reject);
    });
    return new Podman(o, holder);
  }

  /** `podman <args>` in the node's netns and the private mount namespace. */
  podman(...args: string[]): Promise<Run> {
    const argv = [
      '-t',
      String(this.holder.pid),
      '--mount',
      `--net=${this.o.node.path}`,
      'podman',
      '--runtime-flag',
      `root=${this.runcRoot}`,
      ...args,
    ];
    return new Promise((resolve) => {
      execFile('nsenter', argv, { env: this.env, timeout: 30_000, encoding: 'utf8' }, (e, stdout, stderr) => {
        const code = e === null ? 0 : typeof e.code === 'number' ? e.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Like podman(), throwing with its stderr unless it exits 0; its stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.podman(...args);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /**
   * Imports a local image made of busybox-static: a tarball of /bin/busybox and its applet
   * symlinks, no registry involved.
   */
  async importBusybox(ref: string): Promise<void> {
    const root = join(this.o.dir, 'image');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    const tar = join(this.o.dir, 'busybox.tar');
    execFileSync('tar', ['-C', root, '-cf', tar, '.'], { stdio: 'pipe' });
    await this.ok('import', tar, ref);
  }

  /** Removes every container (best effort), ends the mount namespace, removes our cgroups. */
  async close(): Promise<string[]> {
    const problems: string[] = [];
    const r = await this.podman('rm', '--all', '--force', '--time', '0');
    if (r.code !== 0) problems.push(`podman rm --all: ${r.stderr}`);
    this.holder.stdin?.end();
    await new Promise<void>((resolve) => {
      if (this.holder.exitCode !== null) resolve();
      else this.holder.once('exit', () => resolve());
    });
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, mnt, type] = line.split(' ');
      if (mnt === undefined || (type !== 'cgroup' && type !== 'cgroup2')) continue;
      const dir = join(mnt, this.cgroupParent);
      try {
        if (existsSync(dir)) removeCgroupTree(dir);
      } catch (e) {
        problems.push(`cannot remove ${dir}: ${(e as Error).message}`);
      }
    }
    return problems;
  }
}
