import { closeSync, openSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { AuditDevice, AuditEntry, AuditQuery } from "../audit.js";

/**
 * Audit device appending JSON lines to a file (0600, O_APPEND). Entries logged during one
 * event-loop turn are written together by one write(2) at the end of the turn, and every
 * `log` of the batch resolves once the kernel has the bytes. A direct write of a few hundred
 * bytes costs microseconds; going through a WriteStream put a thread-pool round trip on
 * every GetEnv's path and left the daemon idle while calls waited.
 */
export function createFileAuditDevice(path: string): AuditDevice {
  const fd = openSync(path, "a", 0o600);
  let lines: string[] = [];
  let waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;
  let closed = false;

  const flush = () => {
    scheduled = false;
    if (lines.length === 0) return;
    const batch = Buffer.from(lines.join(""));
    const done = waiters;
    lines = [];
    waiters = [];
    try {
      let off = 0;
      while (off < batch.length) off += writeSync(fd, batch, off);
      for (const w of done) w.resolve();
    } catch (err) {
      for (const w of done) w.reject(err);
    }
  };

  return {
    log(entry) {
      if (closed) return Promise.reject(new Error("audit log is closed"));
      lines.push(`${JSON.stringify(entry)}\n`);
      return new Promise<void>((resolve, reject) => {
        waiters.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    logMany(time, entries) {
      if (closed) return Promise.reject(new Error("audit log is closed"));
      // The same line `log` writes for { time, ...e }: time first, then e's keys in order.
      const head = `{"time":${JSON.stringify(time)}`;
      for (const e of entries) {
        const json = JSON.stringify(e);
        lines.push(json === "{}" ? `${head}}\n` : `${head},${json.slice(1)}\n`);
      }
      return new Promise<void>((resolve, reject) => {
        waiters.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
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
