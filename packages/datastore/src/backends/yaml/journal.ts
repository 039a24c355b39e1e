// The store-wide change journal, <root>/.tabby/journal: one JSON line per change, appended
// under the exclusive lock, each with the store-wide revision and the whole object as
// stored (watchers replay it without re-reading files that may have moved on since).
//
//   {"journal":"tabby","version":1,"base":1200}          first line: entries > base follow
//   {"rev":1201,"type":"modified","path":"ipamblocks/10-65-1-0-26.yaml","st":"…","object":{…}}
//
// When the file grows past its limit, the writer holding the lock rewrites it with the
// newest quarter of its entries and a higher base (temp file, fsync, rename); watches from
// revisions below the base get a resync. A reader keeps its descriptor on the old file
// until it has read it to the end, so a rotation loses nothing for a reader keeping up.
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AnyResource } from '../../store/backend.js';

export interface Entry {
  readonly rev: number;
  readonly type: 'added' | 'modified' | 'deleted';
  /** The object's file, relative to the root. */
  readonly path: string;
  /** The written file's stat key (added/modified), so scanners know it is not a hand edit. */
  readonly st?: string;
  /** The object as stored; for a deletion, its last state with the deletion's resourceVersion. */
  readonly object: AnyResource;
}

interface Header {
  readonly journal: 'tabby';
  readonly version: 1;
  readonly base: number;
}

const header = (base: number): string =>
  JSON.stringify({ journal: 'tabby', version: 1, base } satisfies Header) + '\n';

const CHUNK = 1 << 20;
const NL = 0x0a;

function parseHeader(line: string): number | undefined {
  try {
    const h = JSON.parse(line) as Partial<Header>;
    return h.journal === 'tabby' && typeof h.base === 'number' ? h.base : undefined;
  } catch {
    return undefined;
  }
}

/** The revision at the front of an entry line, without parsing the object. */
function revOf(line: string): number | undefined {
  const m = /^\{"rev":(\d+),/.exec(line);
  return m === null ? undefined : Number(m[1]);
}

/** Creates the journal with `base` unless it exists; call holding the exclusive lock. */
export function createJournal(path: string, base: number): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  try {
    writeSync(fd, header(base));
  } finally {
    closeSync(fd);
  }
}

export type CatchUp = 'ok' | 'gap';

/**
 * One process's position in the journal. All calls must be serialised by the caller (the
 * backend runs them on one queue); appends and rotation need the exclusive lock as well.
 */
export class JournalReader {
  private fd = -1;
  private ino = -1;
  /** Where the next unread line starts. */
  private offset = 0;
  /** Bytes read past `offset` that are not yet a whole line. */
  private partial = 0;
  /** The revision of the last entry read (or the file's base). */
  rev = 0;
  /** Entries after this revision are in the current file. */
  base = 0;

  constructor(
    readonly path: string,
    private readonly onProblem: (message: string) => void,
  ) {}

  get size(): number {
    return this.offset;
  }

  /** Opens the current file and positions after its last whole line, learning the revision. */
  open(): void {
    this.openFile();
    const size = fstatSync(this.fd).size;
    // The last whole line's revision: read backwards until a line start is seen.
    let span = Math.min(size, 64 * 1024);
    for (;;) {
      const buf = Buffer.alloc(span);
      readSync(this.fd, buf, 0, span, size - span);
      const end = buf.lastIndexOf(NL);
      if (end < 0 && span < size) {
        span = Math.min(size, span * 4);
        continue;
      }
      const start = end <= 0 ? -1 : buf.lastIndexOf(NL, end - 1);
      if (start < 0 && span < size) {
        span = Math.min(size, span * 4);
        continue;
      }
      this.offset = size - span + end + 1;
      const line = buf.toString('utf8', start + 1, end);
      const rev = revOf(line);
      if (rev !== undefined) this.rev = rev;
      else {
        // Only a header (or nothing usable): the base is the revision.
        this.rev = this.base;
      }
      return;
    }
  }

  private openFile(): void {
    const fd = openSync(this.path, 'r+');
    const first = Buffer.alloc(256);
    const n = readSync(fd, first, 0, first.length, 0);
    const nl = first.subarray(0, n).indexOf(NL);
    const base = nl < 0 ? undefined : parseHeader(first.toString('utf8', 0, nl));
    if (base === undefined) {
      closeSync(fd);
      throw new Error(`${this.path} does not start with a journal header`);
    }
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = fd;
    this.ino = fstatSync(fd).ino;
    this.base = base;
    this.offset = nl + 1;
    this.partial = 0;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Reads every whole line past the position, following a rotation, and hands new entries
   * to `deliver` in order. `locked`: the caller holds the exclusive lock, so a partial last
   * line is a crashed writer's and is cut off. Returns 'gap' when entries were lost to
   * rotation (the caller must resync whatever follows this journal).
   */
  catchUp(deliver: (e: Entry) => void, locked: boolean): CatchUp {
    let result: CatchUp = 'ok';
    for (;;) {
      this.readToEnd(deliver);
      if (this.partial > 0 && locked) {
        ftruncateSync(this.fd, this.offset);
        this.onProblem(`cut off ${this.partial} bytes of an unfinished entry (a writer died mid-append)`);
        this.partial = 0;
      }
      let ino: number;
      try {
        ino = statSync(this.path).ino;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        if (!locked) return result;
        // Removed by hand: start a new one where this one ended.
        this.onProblem('the journal was removed; starting a new one');
        createJournal(this.path, this.rev);
        continue;
      }
      if (ino === this.ino) return result;
      // Rotated: the old file is read to its end; continue in the new one.
      const before = this.rev;
      this.openFile();
      if (this.base > before) {
        result = 'gap';
        this.rev = this.base;
      }
    }
  }

  private readToEnd(deliver: (e: Entry) => void): void {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let pos = this.offset;
    for (;;) {
      const n = readSync(this.fd, buf, 0, CHUNK, pos + carry.length);
      if (n === 0) break;
      const data = carry.length === 0 ? buf.subarray(0, n) : Buffer.concat([carry, buf.subarray(0, n)]);
      let start = 0;
      for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL, start)) {
        this.line(data.toString('utf8', start, nl), deliver);
        start = nl + 1;
      }
      pos += start;
      carry = Buffer.from(data.subarray(start));
    }
    this.offset = pos;
    this.partial = carry.length;
  }

  private line(line: string, deliver: (e: Entry) => void): void {
    const rev = revOf(line);
    if (rev === undefined) {
      if (line !== '' && parseHeader(line) === undefined)
        this.onProblem(`skipped a line that is not a journal entry: ${line.slice(0, 80)}`);
      return;
    }
    if (rev <= this.rev) return;
    let e: Entry;
    try {
      e = JSON.parse(line) as Entry;
    } catch (err) {
      this.onProblem(`skipped a damaged entry at revision ${rev}: ${(err as Error).message}`);
      return;
    }
    this.rev = rev;
    deliver(e);
  }

  /**
   * Appends an entry (rev above the current one); exclusive lock and a caught-up reader only.
   * Not fsync'ed: the object file is durable before this, and a journal tail lost to a power
   * cut costs nothing that matters (every watcher restarts and resyncs; the next revision is
   * above any version a file claims; a file whose version the journal lacks is adopted).
   */
  append(e: Entry): void {
    const line = Buffer.from(JSON.stringify(e) + '\n');
    writeSync(this.fd, line, 0, line.length, this.offset);
    this.offset += line.length;
    this.rev = e.rev;
  }

  /** Keeps the newest quarter of the entries in a fresh file; exclusive lock only. */
  async rotate(keepBytes: number): Promise<void> {
    const size = this.offset;
    const from = Math.max(this.firstEntryOffset(), size - keepBytes);
    const buf = Buffer.alloc(size - from);
    readSync(this.fd, buf, 0, buf.length, from);
    // Start at a whole line: skip the (partial) first one unless `from` is a line start.
    let start = 0;
    if (from > 0) {
      const prev = Buffer.alloc(1);
      readSync(this.fd, prev, 0, 1, from - 1);
      if (prev[0] !== NL) start = buf.indexOf(NL) + 1;
    }
    const kept = buf.subarray(start);
    const firstRev =
      kept.length === 0 ? undefined : revOf(kept.toString('utf8', 0, Math.min(64, kept.length)));
    const base = firstRev === undefined ? this.rev : firstRev - 1;
    const tmp = `${this.path}.${process.pid}.tmp`;
    const h = await open(tmp, 'w', 0o644);
    try {
      await h.writeFile(Buffer.concat([Buffer.from(header(base)), kept]));
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, this.path);
    const d = await open(dirname(this.path), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    const rev = this.rev;
    this.openFile();
    this.offset = fstatSync(this.fd).size;
    this.rev = rev;
  }

  private firstEntryOffset(): number {
    const first = Buffer.alloc(256);
    const n = readSync(this.fd, first, 0, first.length, 0);
    return first.subarray(0, n).indexOf(NL) + 1;
  }

  /**
   * The entries in (from, to] from the file on disk, or 'gone' when they are no longer all
   * there (rotated away). For watches that start from an older revision.
   */
  history(from: number, to: number): Entry[] | 'gone' {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return 'gone';
    }
    try {
      const out: Entry[] = [];
      const buf = Buffer.allocUnsafe(CHUNK);
      let carry = Buffer.alloc(0);
      let pos = 0;
      let first = true;
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, pos);
        if (n === 0) break;
        pos += n;
        const data = carry.length === 0 ? buf.subarray(0, n) : Buffer.concat([carry, buf.subarray(0, n)]);
        let start = 0;
        for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL, start)) {
          const line = data.toString('utf8', start, nl);
          start = nl + 1;
          if (first) {
            first = false;
            const base = parseHeader(line);
            if (base === undefined || base > from) return 'gone';
            continue;
          }
          const rev = revOf(line);
          if (rev === undefined || rev <= from) continue;
          if (rev > to) return out;
          try {
            out.push(JSON.parse(line) as Entry);
          } catch {
            // Reported by the reader that follows the journal.
          }
        }
        carry = Buffer.from(data.subarray(start));
      }
      return first ? 'gone' : out;
    } finally {
      closeSync(fd);
    }
  }
}
