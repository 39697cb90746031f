/**
 * What the driver contract (contract.ts) is made of: frozen change sets of every record kind,
 * as the store hands them over, and the parent side of the kill -9 test (contract-child.ts is
 * the writer it runs).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChangeSet, KeyringRecord, RecordPut } from "./types.js";

/** How a child process opens a driver: `module`'s export `export`, called with `options`. */
export interface ChildDriver {
  /** The module's URL (a .ts file: the child runs under tsx). */
  module: string;
  export: string;
  /** JSON-encodable options for the driver factory. */
  options: unknown;
}

/** The JSON value of `v`, for comparing. */
export const plain = (v: unknown) => JSON.parse(JSON.stringify(v ?? null));

/** A change set at `revision`. */
export function set(
  revision: number,
  puts: RecordPut[],
  deletes: ChangeSet["deletes"] = [],
  kr?: KeyringRecord,
): ChangeSet {
  return kr ? { revision, puts, deletes, keyring: kr } : { revision, puts, deletes };
}

function frozen<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) frozen(x);
  }
  return v;
}

/** A put of group `name` at `rev`. */
export const group = (name: string, rev: number): RecordPut =>
  frozen({ section: "groups", name, record: { name, createdAt: "t", modRevision: rev } });
/** A put of VM `name` at `rev`. */
export const vm = (name: string, rev: number): RecordPut =>
  frozen({
    section: "vms",
    name,
    record: {
      name,
      groups: ["g"],
      tokens: [{ id: "i", hash: "h", createdAt: "t" }],
      createdAt: "t",
      modRevision: rev,
    },
  });
/** A put of admin token `name` at `rev`. */
export const admin = (name: string, rev: number): RecordPut =>
  frozen({
    section: "adminTokens",
    name,
    record: { name, id: "i", hash: "h", createdAt: "t", modRevision: rev },
  });
/** A keyring naming master key `masterKeyId`. */
export const keyring = (masterKeyId: string): KeyringRecord =>
  frozen({
    masterKeyId,
    activeTerm: 1,
    terms: [{ term: 1, wrapped: "w", createdAt: "t" }],
    tokenKey: "k",
  });
/** A put of secret `name` at `rev`, its description `description`. */
export const secret = (name: string, rev: number, description = ""): RecordPut =>
  frozen({
    section: "secrets",
    name,
    record: {
      name,
      env: "E",
      scope: "global",
      kind: "static",
      provider: "",
      description,
      labels: {},
      currentVersion: 1,
      versions: [{ version: 1, ciphertext: "c", createdAt: "t", createdBy: "x" }],
      createdAt: "t",
      updatedAt: "t",
      modRevision: rev,
    },
  });

/**
 * Runs contract-child.ts over `child` until it has acknowledged `target` revisions, then
 * SIGKILLs it; resolves with the highest revision it acknowledged. Rejects if it exits first.
 */
export async function writeThenKill(child: ChildDriver, target: number): Promise<number> {
  const script = fileURLToPath(new URL("./contract-child.ts", import.meta.url));
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const p = spawn(
    process.execPath,
    ["--import", "tsx", script, child.module, child.export, JSON.stringify(child.options)],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  let acked = 0;
  p.stderr.on("data", (b: Buffer) => {
    err += b.toString();
  });
  // "close": after stdout is drained, so every revision printed before the kill is counted.
  const exited = new Promise<void>((resolve) => p.on("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    p.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      const lines = out.split("\n");
      out = lines.pop() ?? "";
      for (const l of lines) if (/^\d+$/.test(l)) acked = Math.max(acked, Number(l));
      // Killed while its writers are busy: most likely inside an append or a compaction.
      if (acked >= target && p.kill("SIGKILL")) resolve();
    });
    p.on("exit", (code) =>
      reject(new Error(`the writer exited (${code}) before the kill: ${err}`)),
    );
  });
  await exited;
  return acked;
}
