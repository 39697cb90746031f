/**
 * Store durable-write latency, in its own process: server/store's openStore over the
 * snapshot-journal driver on a temp dir on the real disk, populated with realistic records
 * (values sealed by the real barrier: ~100-byte plaintexts, XChaCha20-Poly1305 blobs in
 * base64), timing one `store.mutate` (a rotation: a new sealed version) at a time, so that
 * group commit never hides a write. Each sample is paired with a bare write of a file of the
 * same size in the same dir: open temp, writeFile, fsync, close, rename, fsync the dir
 * (fs/promises, the same calls the snapshot's durable write makes), alternating which of the
 * two goes first. The store is seeded with the driver's `replace` (a whole-document write).
 */
import { open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { createBarrier, newMasterKey } from "../../server/barrier/barrier.js";
import { secretAad } from "../../server/secrets/context.js";
import { createSnapshotJournalDriver } from "../../server/store/drivers/snapshot-journal.js";
import { openStore } from "../../server/store/store.js";
import type { SecretRecord, StoreData } from "../../server/store/types.js";
import { emptyStore } from "../../server/store/types.js";
import { serve } from "../lib/ipc.js";
import { nowMs } from "../lib/stats.js";

interface SizeRequest {
  dir: string;
  secrets: number;
  runs: number;
  samplesPerRun: number;
  maxMs: number;
}

export interface SizeResult {
  secrets: number;
  fileBytes: number;
  stringifyMs: number;
  /** Per run: store.mutate latencies and bare write latencies, ms. */
  store: number[][];
  bare: number[][];
  truncated: boolean;
  /** Mean bytes a write appended to the journal. */
  journalBytesPerWrite: number;
  /** The snapshot rewrite (compaction) at this size, timed through store.close(). */
  compactMs: number;
  /** CLOCK_MONOTONIC ms spans of the store writes (for profiles). */
  windows: { from: number; to: number }[];
}

const VALUE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
function value(len = 100): string {
  let s = "";
  for (let i = 0; i < len; i++) s += VALUE_CHARS[Math.floor(Math.random() * VALUE_CHARS.length)];
  return s;
}

async function measure(r: SizeRequest): Promise<SizeResult> {
  const barrier = await createBarrier(newMasterKey(), null);
  const data: StoreData = emptyStore();
  data.keyring = barrier.keyring;
  const now = new Date().toISOString();
  const groups = ["web", "db", "batch", "edge", "ci"];
  for (const g of groups) data.groups[g] = { name: g, createdAt: now, modRevision: 0 };
  for (let i = 0; i < 50; i++) {
    const name = `vm-${i}`;
    const hash = barrier.hashToken(`vmat_${value(43)}`);
    data.vms[name] = {
      name,
      groups: [groups[i % groups.length] as string],
      tokens: [{ id: hash.slice(0, 12), hash, createdAt: now }],
      createdAt: now,
      modRevision: 0,
    };
  }
  for (let i = 0; i < r.secrets; i++) {
    const name = `secret-${i}`;
    const scope =
      i % 5 === 0 ? `vm:vm-${i % 50}` : i % 3 === 0 ? `group:${groups[i % 5]}` : "global";
    const nVersions = 1 + (i % 3);
    const rec: SecretRecord = {
      name,
      env: `SECRET_${i}`,
      scope,
      kind: "static",
      provider: "",
      description: i % 4 === 0 ? "API key for the payments provider" : "",
      labels: i % 7 === 0 ? { team: "platform" } : {},
      currentVersion: nVersions,
      versions: [],
      createdAt: now,
      updatedAt: now,
      modRevision: i + 1,
    };
    for (let v = 1; v <= nVersions; v++) {
      rec.versions.push({
        version: v,
        ciphertext: barrier.seal(secretAad(name, v), value()),
        createdAt: now,
        createdBy: "local",
      });
    }
    data.secrets[name] = rec;
  }
  data.revision = r.secrets + 1;
  const file = join(r.dir, "store.json");
  await rm(r.dir, { recursive: true, force: true });
  await createSnapshotJournalDriver({ file }).replace(data);
  const store = await openStore(createSnapshotJournalDriver({ file }));

  const text = JSON.stringify(store.data);
  const t0 = nowMs();
  for (let i = 0; i < 5; i++) JSON.stringify(store.data);
  const stringifyMs = (nowMs() - t0) / 5;

  let k = 0;
  const rotate = () =>
    store.mutate((d, tx) => {
      const name = `secret-${k++ % r.secrets}`;
      const rec = d.secrets[name] as SecretRecord;
      const version = (rec.versions[rec.versions.length - 1]?.version ?? 0) + 1;
      const at = new Date().toISOString();
      const versions = [
        ...rec.versions,
        {
          version,
          ciphertext: barrier.seal(secretAad(name, version), value()),
          createdAt: at,
          createdBy: "local",
        },
      ].slice(-3);
      tx.put("secrets", { ...rec, versions, currentVersion: version, updatedAt: at });
    });
  const bareFile = join(r.dir, "bare.json");
  const bareTmp = join(r.dir, ".bare.json.tmp");
  const bare = async (buf: Buffer) => {
    const fh = await open(bareTmp, "w", 0o600);
    try {
      await fh.writeFile(buf);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(bareTmp, bareFile);
    const dh = await open(r.dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  };
  const windows: { from: number; to: number }[] = [];
  const timed = async (fn: () => Promise<unknown>, record = false) => {
    const a = nowMs();
    await fn();
    const b = nowMs();
    if (record) windows.push({ from: a, to: b });
    return b - a;
  };

  // Warm-up: JIT, page cache, the file's blocks.
  for (let i = 0; i < 5; i++) {
    await rotate();
    await bare(Buffer.from(text));
  }
  const out: SizeResult = {
    secrets: r.secrets,
    fileBytes: Buffer.byteLength(text),
    stringifyMs,
    store: [],
    bare: [],
    truncated: false,
    journalBytesPerWrite: 0,
    compactMs: 0,
    windows,
  };
  const walFile = `${file}.wal`;
  const walBefore = (await stat(walFile)).size;
  const deadline = nowMs() + r.maxMs;
  for (let run = 0; run < r.runs; run++) {
    const s: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < r.samplesPerRun; i++) {
      if (nowMs() > deadline) {
        out.truncated = true;
        break;
      }
      const buf = Buffer.from(JSON.stringify(store.data));
      if (i % 2 === 0) {
        s.push(await timed(rotate, true));
        b.push(await timed(() => bare(buf)));
      } else {
        b.push(await timed(() => bare(buf)));
        s.push(await timed(rotate, true));
      }
    }
    out.store.push(s);
    out.bare.push(b);
  }
  out.fileBytes = Buffer.byteLength(JSON.stringify(store.data));
  const writes = out.store.reduce((a, x) => a + x.length, 0);
  const walAfter = (await stat(walFile)).size;
  // A compaction during the samples would empty the journal; then the growth is unknown.
  out.journalBytesPerWrite = walAfter > walBefore ? (walAfter - walBefore) / writes : Number.NaN;
  const c0 = nowMs();
  await store.close();
  out.compactMs = nowMs() - c0;
  barrier.zero();
  await rm(r.dir, { recursive: true, force: true });
  return out;
}

serve({ measure: (m) => measure(m as unknown as SizeRequest) });
