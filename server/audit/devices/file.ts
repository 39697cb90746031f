import { closeSync, existsSync, fstatSync, openSync, read, renameSync, writeSync } from "node:fs";
import { promisify } from "node:util";
import type { AuditDevice, AuditEntry, AuditQuery } from "../audit.js";

const readAt = promisify(read);

/** Size-based rotation and its failures; without `maxBytes` the file only grows. */
export interface FileAuditOptions {
  /**
   * Once a flush leaves the file at this many bytes or more, it becomes `<path>.1` (the older
   * ones shift up to `<path>.<keep>`; the oldest is dropped) and a new file is started.
   * @default null (never: rotate outside with logrotate and SIGHUP, see reopen)
   */
  maxBytes?: number | null;
  /** Rotated files kept. @default 5 */
  keep?: number;
  /**
   * Told when a rotation fails; entries keep going to the current file, and a rotation is
   * tried again once another `maxBytes` have been written.
   */
  onRotateError?: (err: unknown) => void;
}

/**
 * Audit device appending JSON lines to a file (0600, O_APPEND). Entries logged during one
 * event-loop turn are written together at the end of the turn, and every `log` of the batch
 * resolves once the kernel has the bytes. A direct write of a few hundred bytes costs
 * microseconds; going through a WriteStream put a thread-pool round trip on every GetEnv's
 * path and left the daemon idle while calls waited. Lines are gathered into chunks of about
 * CHUNK_CHARS: a fan-out's thousands of delivery lines then never become one multi-megabyte
 * string and buffer, whose fresh pages the kernel zeroed on every rotation (perf).
 *
 * Rotation happens inside a flush, between two whole batches, and flushes are synchronous:
 * every line goes to exactly one file, in order (test/audit-rotation.test.ts races writes
 * against it). The size is counted from the bytes written, never stat'ed per line. `reopen`
 * is logrotate's half: after an external `mv`, pending lines go to the moved file and later
 * ones to a new file at `path`. `query` reads `path`, then `path.1`, `path.2`, … .
 */
export function createFileAuditDevice(path: string, opts: FileAuditOptions = {}): AuditDevice {
  const maxBytes = opts.maxBytes ?? null;
  const keep = opts.keep ?? 5;
  let fd = openSync(path, "a", 0o600);
  let size = fstatSync(fd).size;
  /** The size that triggers the next rotation; pushed on by maxBytes after a failed one. */
  let rotateAt = maxBytes;
  let text = "";
  let chunks: Buffer[] = [];
  let waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;
  let closed = false;

  const add = (line: string) => {
    text += line;
    if (text.length >= CHUNK_CHARS) {
      chunks.push(Buffer.from(text));
      text = "";
    }
  };
  const flush = () => {
    scheduled = false;
    if (text.length > 0) chunks.push(Buffer.from(text));
    text = "";
    const batch = chunks;
    const done = waiters;
    chunks = [];
    waiters = [];
    if (batch.length === 0) return;
    try {
      for (const buf of batch) {
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off);
        size += buf.length;
      }
      for (const w of done) w.resolve();
    } catch (err) {
      for (const w of done) w.reject(err);
    }
    if (rotateAt !== null && size >= rotateAt) rotate();
  };
  /** Opens `path` afresh and retires the old descriptor (only once the new one is open). */
  const swap = () => {
    const next = openSync(path, "a", 0o600);
    const old = fd;
    fd = next;
    size = fstatSync(next).size;
    closeSync(old);
  };
  const rotate = () => {
    try {
      // Shift the run of rotated files up by one, oldest first, so no rename overwrites a
      // file that has not moved yet; past `keep - 1` the oldest is overwritten (dropped).
      let top = 0;
      while (top < keep - 1 && existsSync(`${path}.${top + 1}`)) top++;
      for (let i = top; i >= 1; i--) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      // Gone already (a failed reopen after the last rename, or an outside mv): just reopen.
      renameIfThere(path, `${path}.1`);
      swap();
      rotateAt = maxBytes;
    } catch (err) {
      // Not at every flush after this: once another maxBytes have been written.
      rotateAt = size + (maxBytes ?? 0);
      opts.onRotateError?.(err);
    }
  };
  const settled = () =>
    new Promise<void>((resolve, reject) => {
      waiters.push({ resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });

  return {
    log(entry) {
      if (closed) return Promise.reject(new Error("audit log is closed"));
      add(`${JSON.stringify(entry)}\n`);
      return settled();
    },
    logMany(time, entries) {
      if (closed) return Promise.reject(new Error("audit log is closed"));
      // The same line `log` writes for { time, ...e }: time first, then e's keys in order.
      const head = `{"time":${JSON.stringify(time)}`;
      for (const e of entries) {
        const json = JSON.stringify(e);
        add(json === "{}" ? `${head}}\n` : `${head},${json.slice(1)}\n`);
      }
      return settled();
    },
    async query(q) {
      flush();
      // Opened together, before any await: a rotation during the reads cannot show a file twice.
      const fds = openAll(path, keep);
      try {
        let found: AuditEntry[] = [];
        for (const f of fds) {
          if (found.length >= q.limit) break;
          const part = await readTail(f, { ...q, limit: q.limit - found.length });
          found = part.entries.concat(found);
          // Rotated files are older still.
          if (part.pastSince) break;
        }
        return found;
      } finally {
        for (const f of fds) closeSync(f);
      }
    },
    reopen() {
      flush();
      swap();
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      closeSync(fd);
    },
  };
}

// --- internal ---

const CHUNK = 256 * 1024;
/** Bound on the rotated files a query looks at (logrotate may keep more than `keep`). */
const MAX_ROTATED = 1000;
/** Characters of JSON lines gathered before they become one buffer (below mmap-sized). */
const CHUNK_CHARS = 32 * 1024;

function renameIfThere(from: string, to: string) {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/**
 * Read descriptors of `path`, `path.1`, … newest first. Up to `keep` a missing one is skipped
 * (a failed rotation leaves a gap); past it the files logrotate kept are read while they exist.
 */
function openAll(path: string, keep: number): number[] {
  const fds: number[] = [];
  for (let i = 0; i < MAX_ROTATED; i++) {
    try {
      const fd = openSync(i === 0 ? path : `${path}.${i}`, "r");
      // Something else in the name's place (a directory) is not a log: skip it.
      if (fstatSync(fd).isFile()) fds.push(fd);
      else closeSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        for (const f of fds) closeSync(f);
        throw err;
      }
      if (i >= keep) break;
    }
  }
  return fds;
}

/**
 * Reads one file backwards in chunks until `limit` matching entries are found. Lines are cut
 * at newline bytes before decoding, so a character split by a chunk boundary stays whole.
 */
async function readTail(
  fd: number,
  q: AuditQuery,
): Promise<{ entries: AuditEntry[]; pastSince: boolean }> {
  const { size } = fstatSync(fd);
  const found: AuditEntry[] = [];
  // Lines of one batch share a time taken when it was sent, so order may wobble by a few
  // milliseconds: read a minute past `since` before stopping, and filter exactly.
  const stopBefore =
    q.since === undefined
      ? undefined
      : new Date(Date.parse(q.since) - SINCE_SLACK_MS).toISOString();
  let pastSince = false;
  let pos = size;
  let carry = Buffer.alloc(0);
  while (pos > 0 && found.length < q.limit && !pastSince) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await readAt(fd, buf, 0, len, pos);
    const whole = carry.length > 0 ? Buffer.concat([buf, carry]) : buf;
    let start = 0;
    carry = Buffer.alloc(0);
    if (pos > 0) {
      // The first line may begin in the chunk before: keep it for the next round.
      const nl = whole.indexOf(10);
      if (nl < 0) {
        carry = whole;
        continue;
      }
      carry = whole.subarray(0, nl);
      start = nl + 1;
    }
    const lines = whole.toString("utf8", start).split("\n");
    for (let i = lines.length - 1; i >= 0 && found.length < q.limit; i--) {
      const entry = parse(lines[i]);
      if (!entry) continue;
      if (stopBefore !== undefined && entry.time < stopBefore) {
        pastSince = true;
        break;
      }
      if (matches(entry, q) && (q.since === undefined || entry.time >= q.since)) found.push(entry);
    }
  }
  return { entries: found.reverse(), pastSince };
}

/** How far past `since` a query reads before it stops (see readTail). */
const SINCE_SLACK_MS = 60_000;

function parse(line: string | undefined): AuditEntry | undefined {
  if (!line) return undefined;
  try {
    return JSON.parse(line) as AuditEntry;
  } catch {
    return undefined;
  }
}

function matches(e: AuditEntry, q: AuditQuery): boolean {
  return (
    (!q.secret || e.secret === q.secret) &&
    (!q.vm || e.vm === q.vm) &&
    (!q.action || e.action === q.action)
  );
}
