/**
 * Audit device appending JSON lines to a file (0600). Writes go through one append stream,
 * which batches concurrent entries into one write; `log` resolves when the OS has the line.
 */
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import type { AuditDevice, AuditEntry, AuditQuery } from "../audit.js";

export function createFileAuditDevice(path: string): AuditDevice {
  const stream = createWriteStream(path, { flags: "a", mode: 0o600 });
  let failed: Error | undefined;
  stream.on("error", (err) => {
    failed = err;
  });
  return {
    log(entry) {
      if (failed) return Promise.reject(failed);
      return new Promise((resolve, reject) => {
        stream.write(`${JSON.stringify(entry)}\n`, (err) => (err ? reject(err) : resolve()));
      });
    },
    async query(q) {
      return readTail(path, q);
    },
    close() {
      return new Promise((resolve) => stream.end(resolve));
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
