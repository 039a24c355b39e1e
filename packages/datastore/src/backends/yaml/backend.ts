// The YAML directory backend: the embedded default, with no cluster. One readable file per
// resource (see files.ts), shared by the node daemon and many short-lived CNI processes.
//
// - Writes happen under an exclusive flock (lock.ts): read the file, compare resourceVersions,
//   write atomically, append to the journal (journal.ts). The check and the write are one
//   critical section in every process.
// - Revisions are store-wide: the journal's. A resourceVersion is the revision of the
//   object's last change. list() reads under the shared lock, so its items and revision agree.
// - Watches follow the journal (fs.watch on .tabby/, and a poll as fallback). While a kind is
//   watched, its directory is scanned (fs.watch, and a periodic stat of every file): a hand
//   edit, addition or deletion becomes a journal entry, so every process sees it.
// - A file the datastore did not write (no stamp, or a stamp that does not match) is adopted
//   before it is read or compare-and-swapped: new resourceVersion, kept uid, fresh stamp.
import { randomUUID } from 'node:crypto';
import type { Dirent, FSWatcher } from 'node:fs';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  watch,
} from 'node:fs';
import { join } from 'node:path';
import type { Kind } from '../../resources/kinds.js';
import { KIND_INFO, KINDS, isKind } from '../../resources/kinds.js';
import type { ResourceKey } from '../../resources/meta.js';
import { API_VERSION, formatKey } from '../../resources/meta.js';
import type { AnyResource, Backend, ListResult, Watch, WatchOptions } from '../../store/backend.js';
import {
  AlreadyExistsError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../store/errors.js';
import { EventQueue } from '../../store/event-queue.js';
import type { Location, Parsed } from './files.js';
import {
  SUFFIX,
  TEMP_MARK,
  badSegment,
  derivedUid,
  keyOfPath,
  locate,
  parseFile,
  removeDurably,
  render,
  restamp,
  statKey,
  writeAtomic,
} from './files.js';
import type { Entry } from './journal.js';
import { JournalReader, createJournal } from './journal.js';
import { DirLock } from './lock.js';

export interface YamlDirBackendOptions {
  /** The directory; created with its layout on open(). */
  readonly root: string;
  /** How long a write waits for another process's lock before UnavailableError (default 10 s). */
  readonly lockTimeoutMs?: number;
  /** Journal poll and directory rescan interval while something is watched (default 500 ms). */
  readonly pollIntervalMs?: number;
  /** Called once per problem file state: unparseable, or a kind, name or namespace that does not fit. */
  readonly onProblem?: (file: string, message: string) => void;
  /** The journal is trimmed to a quarter when it grows past this (default 8 MiB). */
  readonly journalMaxBytes?: number;
}

/** A resource file that cannot be used; reported on watches as an `error` event. */
export class ResourceFileError extends Error {
  override readonly name = 'ResourceFileError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

type FileState =
  | { readonly state: 'absent' }
  | { readonly state: 'bad'; readonly problem: string; readonly st: string; readonly mtimeMs: number }
  | {
      readonly state: 'good';
      /** Shared with the cache: clone before handing out. */
      readonly object: AnyResource;
      readonly stamped: boolean;
      readonly text: string;
      readonly st: string;
    };

type Good = Extract<FileState, { state: 'good' }>;

/** What a scanner last saw of one file. */
interface Known {
  st: string;
  /** The last good state (a file turned bad keeps it: a typo does not delete the object). */
  object: AnyResource | undefined;
}

interface Tracked {
  readonly kind: Kind;
  refs: number;
  ready: boolean;
  readying: Promise<void> | undefined;
  baseline: Map<string, Known>;
  readonly dirWatchers: Map<string, FSWatcher>;
  dirty: Set<string>;
  /** Files changed in a way the journal did not explain yet, and since when. */
  readonly unexplained: Map<string, number>;
  full: boolean;
  timer: NodeJS.Timeout | undefined;
  scanning: boolean;
  again: boolean;
}

interface WatchState {
  readonly kind: Kind;
  readonly namespace: string | undefined;
  readonly q: EventQueue<AnyResource>;
  lastRev: number;
  live: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const CACHE_LIMIT = 4096;
/** A bad file younger than this may be an editor's half-written save: read it again shortly. */
const SETTLE_MS = 2000;
const STALE_TEMP_MS = 60_000;
/** How long an unexplained file change may wait for its journal entry before it counts as a hand edit. */
const GRACE_MS = 100;

function nsOf(o: AnyResource): { namespace?: string } {
  return o.metadata.namespace === undefined ? {} : { namespace: o.metadata.namespace };
}

function numericRv(o: AnyResource): number {
  const rv = o.metadata.resourceVersion;
  return rv !== undefined && /^\d+$/.test(rv) ? Number(rv) : 0;
}

export class YamlDirBackend implements Backend {
  readonly type = 'yaml';
  readonly root: string;
  private readonly metaDir: string;
  private readonly lock: DirLock;
  private readonly journal: JournalReader;
  private readonly pollMs: number;
  private readonly journalMax: number;
  private readonly onProblem: ((file: string, message: string) => void) | undefined;
  /** Serialises every use of the journal reader (and so every delivery). */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly cache = new Map<string, { text: string; parsed: Parsed }>();
  private readonly watches = new Set<WatchState>();
  private readonly tracked = new Map<Kind, Tracked>();
  private follower: { timer: NodeJS.Timeout; watcher: FSWatcher | undefined } | undefined;
  private kickPending = false;
  private ticks = 0;
  private readonly reported = new Map<string, string>();
  private readonly inflight = new Set<Promise<unknown>>();
  private opening: Promise<void> | undefined;
  private closed = false;

  constructor(opts: YamlDirBackendOptions) {
    this.root = opts.root;
    this.metaDir = join(opts.root, '.tabby');
    this.lock = new DirLock(join(this.metaDir, 'lock'), opts.lockTimeoutMs ?? 10_000);
    this.journal = new JournalReader(join(this.metaDir, 'journal'), (m) =>
      this.onProblem?.(join(this.metaDir, 'journal'), m),
    );
    this.pollMs = opts.pollIntervalMs ?? 500;
    this.journalMax = opts.journalMaxBytes ?? 8 * 1024 * 1024;
    this.onProblem = opts.onProblem;
  }

  static async open(opts: YamlDirBackendOptions): Promise<YamlDirBackend> {
    const b = new YamlDirBackend(opts);
    await b.open();
    return b;
  }

  /** Creates the layout (root, a directory per kind, .tabby/ with lock and journal). */
  open(): Promise<void> {
    this.opening ??= (async () => {
      if (this.closed) throw new UnavailableError(`the YAML datastore ${this.root} is closed`);
      for (const k of KINDS) mkdirSync(join(this.root, KIND_INFO[k].plural), { recursive: true });
      mkdirSync(this.metaDir, { recursive: true });
      this.lock.open();
      if (!existsSync(this.journal.path))
        await this.lock.exclusive(() => Promise.resolve(createJournal(this.journal.path, 0)));
      this.journal.open();
    })().catch((e: unknown) => {
      this.opening = undefined;
      this.lock.close();
      if (e instanceof DatastoreError) throw e;
      throw new UnavailableError(`cannot open the YAML datastore ${this.root}: ${(e as Error).message}`, {
        cause: e,
      });
    });
    return this.opening;
  }

  /** Runs a public operation: after open(), not after close(), and awaited by close(). */
  private op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new UnavailableError(`the YAML datastore ${this.root} is closed`));
    const p = this.open()
      .then(fn)
      .catch((e: unknown) => {
        // Filesystem failures (EACCES, ENOSPC, EIO) are the store being unavailable.
        if (e instanceof DatastoreError) throw e;
        throw new UnavailableError(`YAML datastore ${this.root}: ${(e as Error).message}`, { cause: e });
      });
    this.inflight.add(p);
    const done = (): void => void this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Runs fn after everything queued before it on the journal queue. */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---- reading files ------------------------------------------------------------------

  private readFile(loc: Location): FileState {
    let text: string;
    let st: ReturnType<typeof fstatSync>;
    try {
      // fstat before read: if the file changes in between, the stat is older than the text,
      // so a scanner reads it again rather than missing a change.
      const fd = openSync(loc.abs, 'r');
      try {
        st = fstatSync(fd);
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent' };
      throw new UnavailableError(`cannot read ${loc.abs}: ${(e as Error).message}`, { cause: e });
    }
    const hit = this.cache.get(loc.abs);
    let parsed: Parsed;
    if (hit !== undefined && hit.text === text) parsed = hit.parsed;
    else {
      parsed = parseFile(text, loc.key);
      this.remember(loc.abs, text, parsed);
    }
    const key = statKey(st);
    return parsed.ok
      ? { state: 'good', object: parsed.object, stamped: parsed.stamped, text, st: key }
      : { state: 'bad', problem: parsed.problem, st: key, mtimeMs: st.mtimeMs };
  }

  private remember(abs: string, text: string, parsed: Parsed): void {
    this.cache.delete(abs);
    this.cache.set(abs, { text, parsed });
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
  }

  /** readFile, reading a fresh bad file again a few times (an editor may be mid-save). */
  private async readSettled(loc: Location): Promise<FileState> {
    for (let i = 0; ; i++) {
      const s = this.readFile(loc);
      if (s.state !== 'bad' || i >= 3 || Date.now() - s.mtimeMs > SETTLE_MS) return s;
      await sleep(5 << i);
    }
  }

  private problem(abs: string, message: string, st: string, kind: Kind | undefined): void {
    const tag = `${st} ${message}`;
    if (this.reported.get(abs) === tag) return;
    this.reported.set(abs, tag);
    this.onProblem?.(abs, message);
    const error = new ResourceFileError(abs, message);
    for (const w of this.watches)
      if (w.live && (kind === undefined || w.kind === kind)) w.q.push({ type: 'error', error });
  }

  // ---- the journal --------------------------------------------------------------------

  /** Hands a journal entry to the scanners' baselines and the live watches. */
  private readonly deliver = (e: Entry): void => {
    const kind = e.object.kind;
    const t = this.tracked.get(kind);
    if (t?.ready === true) {
      if (e.type === 'deleted') t.baseline.delete(e.path);
      else t.baseline.set(e.path, { st: e.st ?? '', object: e.object });
    }
    for (const w of this.watches) {
      if (!w.live || e.rev <= w.lastRev) continue;
      w.lastRev = e.rev;
      if (w.kind === kind && (w.namespace === undefined || w.namespace === e.object.metadata.namespace))
        w.q.push({ type: e.type, object: structuredClone(e.object), revision: String(e.rev) });
    }
  };

  /** Reads the journal up to its end; on the journal queue only. */
  private catchUp(locked: boolean): void {
    if (this.journal.catchUp(this.deliver, locked) === 'gap') this.lostHistory();
  }

  /** Entries were rotated away before this process read them: resync every watch and scanner. */
  private lostHistory(): void {
    for (const t of this.tracked.values()) {
      t.ready = false;
      t.readying = undefined;
      void this.ready(t).catch((e: unknown) => this.broadcast(e));
    }
    for (const w of this.watches) {
      if (!w.live) continue;
      w.live = false;
      void this.begin(w, undefined, false);
    }
  }

  private broadcast(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    for (const w of this.watches) w.q.push({ type: 'error', error });
  }

  /** Runs fn holding the exclusive lock with the journal read to its end. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.exclusive(async () => {
      await this.serial(() => this.catchUp(true));
      return fn();
    });
  }

  /** The next revision; exclusive lock only. Above any revision a file already claims (a writer that died between rename and journal). */
  private nextRev(cur: FileState): number {
    return Math.max(this.journal.rev, cur.state === 'good' ? numericRv(cur.object) : 0) + 1;
  }

  /** Writes `text` to the object's file and journals it; exclusive lock only. */
  private async commit(
    type: 'added' | 'modified',
    loc: Location,
    rev: number,
    /** A JSON-plain object to render, or the adopted file's text. */
    what: { readonly object: AnyResource } | { readonly text: string },
  ): Promise<AnyResource> {
    let text: string;
    let parsed: Parsed;
    if ('object' in what) {
      // JSON-plain data renders to YAML that parses back to the same: no second parse.
      text = render(what.object);
      parsed = { ok: true, object: what.object, stamped: true };
    } else {
      text = what.text;
      parsed = parseFile(text, loc.key);
      if (!parsed.ok || !parsed.stamped)
        throw new Error(`adopting ${loc.abs}: restamped text does not parse`);
    }
    const st = writeAtomic(loc.abs, text);
    this.remember(loc.abs, text, parsed);
    await this.append({ rev, type, path: loc.rel, st, object: parsed.object });
    return structuredClone(parsed.object);
  }

  /** The object as it will read back: JSON-plain (no undefined, Date or class instances). */
  private plain(obj: AnyResource, key: ResourceKey): AnyResource {
    try {
      return JSON.parse(JSON.stringify(obj)) as AnyResource;
    } catch (e) {
      throw new ValidationError([
        { resource: formatKey(key), path: '', reason: `cannot be stored: ${(e as Error).message}` },
      ]);
    }
  }

  private append(e: Entry): Promise<void> {
    return this.serial(async () => {
      this.journal.append(e);
      this.deliver(e);
      if (this.journal.size > this.journalMax) await this.journal.rotate(Math.floor(this.journalMax / 4));
    });
  }

  /** The file's state for a writer, adopting a hand-written one first; exclusive lock only. */
  private async current(loc: Location): Promise<FileState> {
    const s = await this.readSettled(loc);
    if (s.state === 'bad') this.problem(loc.abs, s.problem, s.st, loc.key.kind);
    if (s.state === 'good' && !s.stamped) return this.adopt(loc, s);
    return s;
  }

  /**
   * Makes a hand-written or hand-edited file the datastore's: a new revision and
   * resourceVersion, its uid (or the one it had, or a stable derived one) and creation time
   * kept, a fresh stamp, and a journal entry so that every watcher sees the change.
   */
  private async adopt(loc: Location, s: Good): Promise<Good> {
    const rev = this.nextRev(s);
    const m = s.object.metadata;
    const known = this.tracked.get(loc.key.kind)?.baseline.get(loc.rel)?.object;
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    const text = restamp(s.text, {
      resourceVersion: String(rev),
      uid: str(m.uid) ?? known?.metadata.uid ?? derivedUid(loc.key),
      creationTimestamp:
        str(m.creationTimestamp) ?? known?.metadata.creationTimestamp ?? new Date().toISOString(),
      apiVersion: API_VERSION,
    });
    // "modified" when this was an object before (a scanner knew it, or it carries a version).
    const type = known !== undefined || m.resourceVersion !== undefined ? 'modified' : 'added';
    const object = await this.commit(type, loc, rev, { text });
    return { state: 'good', object, stamped: true, text, st: '' };
  }

  // ---- Backend: reads -----------------------------------------------------------------

  get(key: ResourceKey<Kind>): Promise<AnyResource | undefined> {
    return this.op(async () => {
      if (!isKind(key.kind)) return undefined;
      const loc = locate(this.root, key);
      if ('problem' in loc) return undefined;
      const s = await this.readSettled(loc);
      if (s.state === 'absent') return undefined;
      if (s.state === 'bad') {
        this.problem(loc.abs, s.problem, s.st, key.kind);
        return undefined;
      }
      if (s.stamped) return structuredClone(s.object);
      const cur = await this.exclusive(() => this.current(loc));
      return cur.state === 'good' ? structuredClone(cur.object) : undefined;
    });
  }

  list(kind: Kind, opts: { readonly namespace?: string } = {}): Promise<ListResult> {
    return this.op(async () => {
      const { items, rev } = await this.snapshot(kind, opts.namespace, () => undefined);
      return { items, revision: String(rev) };
    });
  }

  /**
   * Every good object of a kind (one namespace, or all) and the revision they are current
   * at. Under the shared lock, so no write is half done; `inQueue` runs on the journal
   * queue at that revision (a watch goes live there). Hand-written files are adopted first,
   * under the exclusive lock.
   */
  private async snapshot(
    kind: Kind,
    namespace: string | undefined,
    inQueue: (items: AnyResource[], rev: number, files: Map<string, Known>, bad: ResourceFileError[]) => void,
  ): Promise<{ items: AnyResource[]; rev: number }> {
    const run = (adopting: boolean) =>
      this.serial(async () => {
        this.catchUp(adopting);
        const c = await this.collect(kind, namespace);
        if (c.unstamped.length > 0 && !adopting) return c.unstamped;
        const rev = this.journal.rev;
        inQueue(c.items, rev, c.files, c.bad);
        return { items: c.items.map((o) => structuredClone(o)), rev };
      });
    const first = await this.lock.shared(() => run(false));
    if (!Array.isArray(first)) return first;
    return this.exclusive(async () => {
      for (const loc of first) await this.current(loc);
      const r = await run(true);
      if (Array.isArray(r)) throw new Error('unreachable: adopting snapshot returned files');
      return r;
    });
  }

  /** The directories of a kind to read: one namespace's, all namespaces', or the kind's. */
  private kindDirs(kind: Kind, namespace: string | undefined): string[] {
    const plural = KIND_INFO[kind].plural;
    if (!KIND_INFO[kind].namespaced) return [plural];
    if (namespace !== undefined) return badSegment(namespace) === undefined ? [`${plural}/${namespace}`] : [];
    return entries(join(this.root, plural))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => `${plural}/${d.name}`);
  }

  /** Files that may be resources (not dotfiles, editor backups or temp files) under `dir`. */
  private yamlFiles(dir: string): string[] {
    return entries(join(this.root, dir))
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && d.name.endsWith(SUFFIX) && !d.name.startsWith('.'))
      .map((d) => `${dir}/${d.name}`);
  }

  private async collect(
    kind: Kind,
    namespace: string | undefined,
  ): Promise<{
    items: AnyResource[];
    files: Map<string, Known>;
    unstamped: Location[];
    bad: ResourceFileError[];
  }> {
    const items: AnyResource[] = [];
    const files = new Map<string, Known>();
    const unstamped: Location[] = [];
    const bad = KIND_INFO[kind].namespaced && namespace === undefined ? this.strayFiles(kind) : [];
    for (const dir of this.kindDirs(kind, namespace)) {
      for (const rel of this.yamlFiles(dir)) {
        const key = keyOfPath(rel);
        if (key === undefined) continue;
        const loc: Location = { key, rel, abs: join(this.root, rel) };
        const s = await this.readSettled(loc);
        if (s.state === 'absent') continue;
        if (s.state === 'bad') {
          this.problem(loc.abs, s.problem, s.st, kind);
          bad.push(new ResourceFileError(loc.abs, s.problem));
          files.set(rel, { st: s.st, object: undefined });
        } else if (!s.stamped) unstamped.push(loc);
        else {
          items.push(s.object);
          files.set(rel, { st: s.st, object: s.object });
        }
      }
    }
    return { items, files, unstamped, bad };
  }

  /** Namespaced kinds keep files one level down; reports any at the top. */
  private strayFiles(kind: Kind): ResourceFileError[] {
    const plural = KIND_INFO[kind].plural;
    const out: ResourceFileError[] = [];
    for (const rel of this.yamlFiles(plural)) {
      const abs = join(this.root, rel);
      const st = statOrUndefined(abs);
      if (st === undefined) continue;
      const problem = `${kind} is namespaced: its files go in ${plural}/<namespace>/`;
      this.problem(abs, problem, st, kind);
      out.push(new ResourceFileError(abs, problem));
    }
    return out;
  }

  // ---- Backend: writes ----------------------------------------------------------------

  private writable(obj: AnyResource): Location {
    const key = { kind: obj.kind, name: obj.metadata.name, ...nsOf(obj) };
    const resource = isKind(obj.kind) ? formatKey(key) : `${String(obj.kind)} ${obj.metadata.name}`;
    if (!isKind(obj.kind)) throw new ValidationError([{ resource, path: 'kind', reason: 'unknown kind' }]);
    const loc = locate(this.root, key);
    if ('problem' in loc) throw new ValidationError([{ resource, path: loc.path, reason: loc.problem }]);
    return loc;
  }

  create(obj: AnyResource): Promise<AnyResource> {
    return this.op(() => {
      const loc = this.writable(obj);
      return this.exclusive(async () => {
        const cur = await this.current(loc);
        if (cur.state !== 'absent') throw new AlreadyExistsError(loc.key);
        const rev = this.nextRev(cur);
        const stored = this.plain(obj, loc.key);
        stored.metadata.resourceVersion = String(rev);
        stored.metadata.uid = randomUUID();
        stored.metadata.creationTimestamp = new Date().toISOString();
        return this.commit('added', loc, rev, { object: stored });
      });
    });
  }

  update(obj: AnyResource): Promise<AnyResource> {
    return this.op(() => {
      const loc = this.writable(obj);
      return this.exclusive(async () => {
        const cur = await this.current(loc);
        if (cur.state !== 'good') throw new NotFoundError(loc.key);
        const have = cur.object.metadata;
        if (obj.metadata.resourceVersion !== have.resourceVersion)
          throw new ConflictError(loc.key, obj.metadata.resourceVersion, have.resourceVersion);
        const rev = this.nextRev(cur);
        const stored = this.plain(obj, loc.key);
        stored.metadata.resourceVersion = String(rev);
        if (have.uid !== undefined) stored.metadata.uid = have.uid;
        if (have.creationTimestamp !== undefined) stored.metadata.creationTimestamp = have.creationTimestamp;
        return this.commit('modified', loc, rev, { object: stored });
      });
    });
  }

  delete(key: ResourceKey<Kind>, opts: { readonly resourceVersion?: string } = {}): Promise<AnyResource> {
    return this.op(async () => {
      const loc = isKind(key.kind) ? locate(this.root, key) : undefined;
      if (loc === undefined || 'problem' in loc) throw new NotFoundError(key);
      return this.exclusive(async () => {
        const cur = await this.current(loc);
        if (cur.state !== 'good') throw new NotFoundError(key);
        const have = cur.object.metadata.resourceVersion;
        if (opts.resourceVersion !== undefined && opts.resourceVersion !== have)
          throw new ConflictError(key, opts.resourceVersion, have);
        const rev = this.nextRev(cur);
        removeDurably(loc.abs);
        const gone = structuredClone(cur.object);
        gone.metadata.resourceVersion = String(rev);
        await this.append({ rev, type: 'deleted', path: loc.rel, object: gone });
        return structuredClone(cur.object);
      });
    });
  }

  // ---- Backend: watch -----------------------------------------------------------------

  watch(kind: Kind, opts: WatchOptions = {}): Watch {
    const w: WatchState = {
      kind,
      namespace: opts.namespace,
      q: new EventQueue<AnyResource>(() => this.unwatch(w)),
      lastRev: -1,
      live: false,
    };
    if (this.closed || !isKind(kind)) {
      w.q.close();
      return w.q;
    }
    this.watches.add(w);
    let t = this.tracked.get(kind);
    if (t === undefined) {
      t = {
        kind,
        refs: 0,
        ready: false,
        readying: undefined,
        baseline: new Map(),
        dirWatchers: new Map(),
        dirty: new Set(),
        unexplained: new Map(),
        full: false,
        timer: undefined,
        scanning: false,
        again: false,
      };
      this.tracked.set(kind, t);
    }
    t.refs++;
    this.startFollower();
    const rev = opts.revision;
    void this.begin(w, rev !== undefined && /^\d+$/.test(rev) ? Number(rev) : undefined, true);
    return w.q;
  }

  private unwatch(w: WatchState): void {
    this.watches.delete(w);
    const t = this.tracked.get(w.kind);
    if (t !== undefined && --t.refs === 0) {
      for (const fw of t.dirWatchers.values()) fw.close();
      clearTimeout(t.timer);
      this.tracked.delete(w.kind);
    }
    if (this.watches.size === 0) this.stopFollower();
  }

  /** Brings a watch live: replaying from `from` when the journal still has it, else a resync. Retries on failure. */
  private begin(w: WatchState, from: number | undefined, first: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      let delay = 100;
      while (!w.q.isClosed && !this.closed) {
        try {
          await this.open();
          const t = this.tracked.get(w.kind);
          if (t !== undefined) await this.ready(t);
          if (first && from !== undefined) {
            const replayed = await this.serial(() => {
              this.catchUp(false);
              const to = this.journal.rev;
              if (from > to) return false;
              const past = from === to ? [] : this.journal.history(from, to);
              if (past === 'gone') return false;
              for (const e of past)
                if (
                  e.object.kind === w.kind &&
                  (w.namespace === undefined || w.namespace === e.object.metadata.namespace)
                )
                  w.q.push({ type: e.type, object: e.object, revision: String(e.rev) });
              w.lastRev = to;
              w.live = true;
              // Caught up: from here on the kind's directory is scanned for hand edits too.
              w.q.push({ type: 'bookmark', revision: String(to) });
              return true;
            });
            if (replayed) return;
          }
          await this.snapshot(w.kind, w.namespace, (items, rev, _files, bad) => {
            // A new watch hears of files already skipped, as live ones did when they went bad.
            for (const error of bad) w.q.push({ type: 'error', error });
            w.q.push({ type: 'resync', items: items.map((o) => structuredClone(o)), revision: String(rev) });
            w.lastRev = rev;
            w.live = true;
          });
          return;
        } catch (e) {
          w.q.push({ type: 'error', error: e instanceof Error ? e : new Error(String(e)) });
          await sleep(delay);
          delay = Math.min(delay * 2, 5000);
        }
      }
    };
    const p = run();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private startFollower(): void {
    if (this.follower !== undefined) return;
    const timer = setInterval(() => this.tick(), this.pollMs);
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.metaDir, (_ev, name) => {
        if (name === null || name === 'journal') this.kick();
      });
      // Some filesystems cannot watch; the poll carries on alone.
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined;
    }
    this.follower = { timer, watcher };
  }

  private stopFollower(): void {
    if (this.follower === undefined) return;
    clearInterval(this.follower.timer);
    this.follower.watcher?.close();
    this.follower = undefined;
  }

  /** Reads new journal entries soon (coalesced). */
  private kick(): void {
    if (this.kickPending || this.closed) return;
    this.kickPending = true;
    this.serial(() => {
      this.kickPending = false;
      if (!this.closed) this.catchUp(false);
    }).catch((e: unknown) => this.broadcast(e));
  }

  private tick(): void {
    this.kick();
    // Every file is stat'ed at most about once a second; fs.watch brings changes sooner.
    if (++this.ticks % Math.max(1, Math.round(1000 / this.pollMs)) !== 0) return;
    for (const t of this.tracked.values()) {
      t.full = true;
      this.scheduleScan(t, 0);
    }
  }

  // ---- scanning for hand edits ----------------------------------------------------------

  /** Takes a kind's baseline (once per tracking) and starts watching its directories. */
  private ready(t: Tracked): Promise<void> {
    t.readying ??= this.snapshot(t.kind, undefined, (_items, _rev, files) => {
      t.baseline = files;
      t.ready = true;
    }).then(
      () => this.watchDirs(t),
      (e: unknown) => {
        t.readying = undefined;
        throw e;
      },
    );
    return t.readying;
  }

  private watchDirs(t: Tracked): void {
    if (this.tracked.get(t.kind) !== t) return;
    const plural = KIND_INFO[t.kind].plural;
    const dirs = KIND_INFO[t.kind].namespaced ? [plural, ...this.kindDirs(t.kind, undefined)] : [plural];
    for (const [dir, fw] of t.dirWatchers)
      if (!dirs.includes(dir)) {
        fw.close();
        t.dirWatchers.delete(dir);
      }
    for (const dir of dirs) {
      if (t.dirWatchers.has(dir)) continue;
      try {
        const fw = watch(join(this.root, dir), (_ev, name) => {
          if (name === null || (dir === plural && KIND_INFO[t.kind].namespaced)) t.full = true;
          else if (name.endsWith(SUFFIX) && !name.startsWith('.')) t.dirty.add(`${dir}/${name}`);
          else return;
          this.scheduleScan(t, 20);
        });
        fw.on('error', () => {
          fw.close();
          t.dirWatchers.delete(dir);
        });
        t.dirWatchers.set(dir, fw);
      } catch {
        // Gone already, or cannot be watched: the periodic rescan covers it.
      }
    }
  }

  private scheduleScan(t: Tracked, delay: number): void {
    if (t.timer !== undefined || this.closed) return;
    t.timer = setTimeout(() => {
      t.timer = undefined;
      if (t.scanning) {
        t.again = true;
        return;
      }
      t.scanning = true;
      const p = this.scan(t)
        .catch((e: unknown) => this.broadcast(e))
        .finally(() => {
          t.scanning = false;
          if (t.again) {
            t.again = false;
            this.scheduleScan(t, 20);
          }
        });
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }, delay);
  }

  /**
   * Compares a kind's files with the baseline; a difference the journal does not explain is
   * a hand edit, settled under the exclusive lock as a journal entry.
   */
  private async scan(t: Tracked): Promise<void> {
    if (!t.ready || this.closed || this.tracked.get(t.kind) !== t) return;
    const full = t.full;
    const dirty = t.dirty;
    t.full = false;
    t.dirty = new Set();
    // Known writes first: what the journal explains is not a hand edit.
    await this.serial(() => this.catchUp(false));
    if (!t.ready) return;
    const now = new Map<string, string>();
    let question: Iterable<string>;
    if (full) {
      this.watchDirs(t);
      for (const dir of this.kindDirs(t.kind, undefined)) {
        this.sweepTemp(dir);
        for (const rel of this.yamlFiles(dir)) {
          const st = statOrUndefined(join(this.root, rel));
          if (st !== undefined) now.set(rel, st);
        }
      }
      if (KIND_INFO[t.kind].namespaced) this.strayFiles(t.kind);
      question = new Set([...now.keys(), ...t.baseline.keys()]);
    } else {
      for (const rel of dirty) {
        const st = statOrUndefined(join(this.root, rel));
        if (st !== undefined) now.set(rel, st);
      }
      question = dirty;
    }
    const candidates = [...question].filter((rel) => now.get(rel) !== t.baseline.get(rel)?.st);
    const settle: Location[] = [];
    for (const rel of candidates) {
      const key = keyOfPath(rel);
      if (key === undefined || key.kind !== t.kind) continue;
      const loc: Location = { key, rel, abs: join(this.root, rel) };
      const s = await this.readSettled(loc);
      const known = t.baseline.get(rel);
      if (s.state === 'bad') {
        this.problem(loc.abs, s.problem, s.st, t.kind);
        t.baseline.set(rel, { st: s.st, object: known?.object });
      } else if (
        s.state === 'good' &&
        s.stamped &&
        known !== undefined &&
        s.object.metadata.resourceVersion === known.object?.metadata.resourceVersion
      ) {
        known.st = s.st;
        this.reported.delete(loc.abs);
      } else if (s.state === 'absent' && known?.object === undefined) t.baseline.delete(rel);
      else {
        // Unexplained. Another process may be between writing the file and journalling it:
        // look once more a little later before taking the lock to settle it.
        const since = t.unexplained.get(rel);
        if (since === undefined) {
          t.unexplained.set(rel, Date.now());
          t.dirty.add(rel);
          this.scheduleScan(t, GRACE_MS);
        } else if (Date.now() - since < GRACE_MS) {
          t.dirty.add(rel);
          this.scheduleScan(t, GRACE_MS);
        } else settle.push(loc);
        continue;
      }
      t.unexplained.delete(rel);
    }
    for (const loc of settle) t.unexplained.delete(loc.rel);
    if (settle.length > 0) await this.exclusive(() => this.settle(t, settle));
  }

  /** Turns unexplained file changes into journal entries; exclusive lock only. */
  private async settle(t: Tracked, locs: Location[]): Promise<void> {
    for (const loc of locs) {
      if (!t.ready) return;
      const s = await this.readSettled(loc);
      const known = t.baseline.get(loc.rel);
      if (s.state === 'absent') {
        if (known?.object === undefined) {
          t.baseline.delete(loc.rel);
          continue;
        }
        const rev = this.nextRev(s);
        const gone = structuredClone(known.object);
        gone.metadata.resourceVersion = String(rev);
        await this.append({ rev, type: 'deleted', path: loc.rel, object: gone });
      } else if (s.state === 'bad') {
        this.problem(loc.abs, s.problem, s.st, t.kind);
        t.baseline.set(loc.rel, { st: s.st, object: known?.object });
      } else {
        this.reported.delete(loc.abs);
        if (
          s.stamped &&
          known !== undefined &&
          s.object.metadata.resourceVersion === known.object?.metadata.resourceVersion
        ) {
          known.st = s.st;
          continue;
        }
        // Unstamped (hand-written), or stamped with a version the journal never gave this
        // file (a restored backup, a copy): a change like any other, with a new version.
        await this.adopt(loc, s);
      }
    }
  }

  /** Removes temp files a killed writer left behind (never a resource file). */
  private sweepTemp(dir: string): void {
    for (const d of entries(join(this.root, dir))) {
      if (!d.name.startsWith('.') || !d.name.includes(TEMP_MARK)) continue;
      const abs = join(this.root, dir, d.name);
      try {
        if (Date.now() - statSync(abs).mtimeMs > STALE_TEMP_MS) rmSync(abs, { force: true });
      } catch {
        // Renamed or removed meanwhile.
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.q.close();
    this.stopFollower();
    for (const t of this.tracked.values()) {
      clearTimeout(t.timer);
      for (const fw of t.dirWatchers.values()) fw.close();
    }
    this.tracked.clear();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.queue;
    if (this.opening !== undefined) {
      await this.opening.catch(() => undefined);
      this.journal.close();
      this.lock.close();
    }
  }
}

function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

function statOrUndefined(abs: string): string | undefined {
  try {
    return statKey(statSync(abs));
  } catch {
    return undefined;
  }
}
