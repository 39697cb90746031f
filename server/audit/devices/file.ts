import { closeSync, openSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { AuditDevice, AuditEntry, AuditQuery } from "../audit.js";

/**
 * Audit device appending JSON lines to a file (0600, O_APPEND). Entries logged during one
 * event-loop turn are written together at the end of the turn, and every `log` of the batch
 * resolves once the kernel has the bytes. A direct write of a few hundred bytes costs
 * microseconds; going through a WriteStream put a thread-pool round trip on every GetEnv's
 * path and left the daemon idle while calls waited. Lines are gathered into chunks of about
 * CHUNK_CHARS: a fan-out's thousands of delivery lines then never become one multi-megabyte
 * string and buffer, whose fresh pages the kernel zeroed on every rotation (perf).
 */
export function createFileAuditDevice(path: string): AuditDevice {
  const fd = openSync(path, "a", 0o600);
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
      }
      for (const w of done) w.resolve();
    } catch (err) {
      for (const w of done) w.reject(err);
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
      return readTail(path, q);
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
/** Characters of JSON lines gathered before they become one buffer (below mmap-sized). */
const CHUNK_CHARS = 32 * 1024;

/** Reads the file backwards in chunks until `limit` matching entries are found. */
async function readTail(path: string, q: AuditQuery): Promise<AuditEntry[]> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const found: AuditEntry[] = [];
    let pos = size;
    let carry = "";
    while (pos > 0 && found.length < q.limit) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      const text = buf.toString("utf8") + carry;
      const lines = text.split("\n");
      carry = pos > 0 ? (lines.shift() ?? "") : "";
      for (let i = lines.length - 1; i >= 0 && found.length < q.limit; i--) {
        const entry = parse(lines[i]);
        if (entry && matches(entry, q)) found.push(entry);
      }
    }
    if (carry && found.length < q.limit) {
      const entry = parse(carry);
      if (entry && matches(entry, q)) found.push(entry);
    }
    return found.reverse();
  } finally {
    await fh.close();
  }
}

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
