/**
 * Applying snapshots, in the order that keeps a crash at any point safe:
 *   render both dialects → write each file that changed (unit file, its last-known-good copy,
 *   environment.d) → restart/reload the units whose keys changed (debounced by exec) →
 *   persist revision, digest and names/versions → AckEnv.
 * The state is persisted only after the restarts, so a crash in between re-does them on the
 * next start (the diff is against the persisted names/versions). Snapshots keep flowing while a
 * restart round is debounced: each one's files are written at once, its changes join the round,
 * and only the newest snapshot of the round is persisted and acknowledged.
 * A little over 250 lines: that crash-ordering is one sequence, kept in one file to be read
 * top to bottom (rendering, writing and restarting themselves live in template/sink/exec).
 */

import { renderEnvironmentD, renderEnvironmentFile } from "../client/env-render.js";
import { readIfExists } from "../common/fs.js";
import type { Logger } from "../common/logger.js";
import type { ShimConfig, UnitSpec } from "./config.js";
import { parseEnvironmentFile } from "./envfile.js";
import { diffNames, type Exec } from "./exec.js";
import { writeFileAtomic } from "./sink.js";
import type { AckRequest, EnvSnapshot } from "./source.js";
import { type ShimState, saveState, type VarSource, versionKeys } from "./state.js";

/** The files the applier writes. */
export type FilePaths = Pick<
  ShimConfig,
  "environmentDFile" | "unitEnvFile" | "lastKnownGoodFile" | "stateFile"
>;

/** What createApplier needs: the files, the units, the parts it drives, the state to start from. */
export interface ApplierOptions {
  files: FilePaths;
  /** The configured dependent units' names. */
  units: readonly string[];
  /**
   * The configured units with their keys and actions: sent in every ack, so that
   * `secretsctl rotate --plan` can say which units a change would restart. Omitted: not sent.
   */
  unitMap?: readonly UnitSpec[];
  exec: Exec;
  log: Logger;
  /** Sends AckEnv; resolves false if it could not. */
  ack(req: AckRequest): Promise<boolean>;
  clientVersion: string;
  /** The persisted state at start. */
  initial: ShimState;
  /** Called after each persisted apply and each file change. */
  onApplied?(state: ShimState, omitted: string[]): void;
  /** @default () => new Date() */
  now?: () => Date;
}

/** Applies snapshots in the crash-safe order above; one per shim, made by createApplier. */
export interface Applier {
  /** Writes the snapshot's files and schedules its restarts; rejects if a file write fails. */
  apply(snapshot: EnvSnapshot): Promise<void>;
  /**
   * The persisted revision and digest, for WatchEnv. The digest is "" (so the server sends a
   * snapshot) until `checkFiles` found every file in place or a snapshot was applied.
   */
  cursor(): { revision: bigint; digest: string };
  /**
   * Checks that what the persisted digest stands for is in place: every file exists and every
   * configured unit was there when it was applied. If not (a file deleted, /run emptied with no
   * last-known-good copy, a unit added by a new install), a matching digest would get only
   * heartbeats until the next change, so the digest is withheld and the server sends a snapshot.
   */
  verify(): Promise<boolean>;
  /** The persisted state. */
  readonly state: Readonly<ShimState>;
  /** Resolves once every scheduled restart, persist and ack has finished. */
  idle(): Promise<void>;
}

/**
 * Creates the applier. `apply` is called by the source for each snapshot, one at a time; it
 * rejects (after acking the error) only when a file cannot be written, which makes the source
 * reconnect and the server send the snapshot again.
 */
export function createApplier(opts: ApplierOptions): Applier {
  const now = opts.now ?? (() => new Date());
  const f = opts.files;
  let persisted = opts.initial;
  // The versions of what the files now hold (ahead of `persisted` while a round is debounced).
  let written = versionKeys(opts.initial.vars);
  let changedAt = opts.initial.changedAt;
  let latest: EnvSnapshot | undefined;
  let tail: Promise<void> = Promise.resolve();
  let resync = true;
  // Units that already got the env (persisted, then as applied).
  let synced = new Set(opts.initial.units);
  const unacked = { units: new Set<string>(), errors: [] as string[] };
  let lastMissing = "";
  let lastMissingSeen = false;
  const unitMap = ackedUnitMap(opts.unitMap, opts.log);

  async function finish(snap: EnvSnapshot, vars: Record<string, VarSource>, omitted: string[]) {
    if (snap !== latest) return; // a newer snapshot's finish persists and acks for both
    const state: ShimState = {
      revision: Number(snap.revision),
      digest: snap.digest,
      vars,
      units: [...opts.units],
      appliedAt: now().toISOString(),
      changedAt,
    };
    const errors = unacked.errors.splice(0);
    const units = [...unacked.units].sort();
    unacked.units.clear();
    try {
      await saveState(f.stateFile, state);
      persisted = state;
      resync = false;
    } catch (err) {
      opts.log.error("cannot persist the state", { file: f.stateFile, err });
      errors.push(`cannot write the state file: ${(err as NodeJS.ErrnoException).code}`);
    }
    opts.onApplied?.(persisted, omitted);
    opts.log.info("applied", { revision: snap.revision, vars: snap.vars.length, units });
    await opts.ack({
      revision: snap.revision,
      restartedUnits: units,
      omitted,
      ...(snap.missing?.length ? { missing: snap.missing } : {}),
      ...unitMap,
      clientVersion: opts.clientVersion,
      error: errors.join("; ").slice(0, 1000),
    });
  }

  return {
    async apply(snap) {
      // Required manifest entries secretsd has no good value for: their vars are absent from
      // the files (never written empty); said by name, each time the set changes.
      const missingNow = snap.missing ?? [];
      const missing = missingNow.join(",");
      if (missing !== lastMissing) {
        lastMissing = missing;
        if (missingNow.length > 0) {
          opts.log.error("required entries are missing; their env vars are not written", {
            missing: missingNow,
          });
        } else if (lastMissingSeen) {
          opts.log.info("no required entry is missing any more");
        }
        lastMissingSeen = missingNow.length > 0;
      }
      const values = new Map(snap.vars.map((v) => [v.name, v.value]));
      const r = render(values, f, opts.log);
      let w: Written;
      try {
        w = await writeAll(f, r);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        opts.log.error("cannot write the env files; keeping the previous ones", { err });
        // Ack the revision still applied, so the server does not count this one as applied.
        await opts.ack({
          revision: BigInt(persisted.revision),
          restartedUnits: [],
          omitted: r.omitted,
          ...(snap.missing?.length ? { missing: snap.missing } : {}),
          ...unitMap,
          clientVersion: opts.clientVersion,
          error: `revision ${snap.revision}: cannot write the env files: ${code}`,
        });
        throw err;
      }
      const versions = new Map(snap.vars.map((v) => [v.name, `${v.secret}@${v.version}`]));
      const changed = changedNames(written, versions, w.previousUnitFile, r.unitFileValues);
      written = versions;
      if (w.changedFiles.length > 0) {
        changedAt = now().toISOString();
        opts.log.info("env files updated", {
          revision: snap.revision,
          files: w.changedFiles,
          changed: [...changed].sort(),
        });
      }
      latest = snap;
      const vars = Object.fromEntries(
        snap.vars.map((v) => [v.name, { secret: v.secret, version: v.version }]),
      );
      const fresh = opts.units.filter((u) => !synced.has(u));
      synced = new Set(opts.units);
      const acted = opts.exec.act(changed, fresh);
      tail = tail
        .then(() => acted)
        .then((res) => {
          if (res.cancelled) return;
          for (const u of res.units) unacked.units.add(u);
          if (res.error) unacked.errors.push(res.error);
          return finish(snap, vars, r.omitted);
        })
        .catch((err: unknown) => opts.log.error("finishing an apply failed", { err }));
    },
    cursor: () => ({
      revision: BigInt(persisted.revision),
      digest: resync ? "" : persisted.digest,
    }),
    async verify() {
      const paths = [f.unitEnvFile, f.lastKnownGoodFile, f.environmentDFile];
      const present = await Promise.all(
        paths.map((p) => readIfExists(p).then(Boolean, () => false)),
      );
      const missing = paths.filter((_, i) => !present[i]);
      const newUnits = opts.units.filter((u) => !synced.has(u));
      resync = missing.length > 0 || newUnits.length > 0;
      if (resync && persisted.digest !== "") {
        opts.log.info("asking the server for a full snapshot", { missing, newUnits });
      }
      return !resync;
    },
    get state() {
      return persisted;
    },
    async idle() {
      let t: Promise<void>;
      do {
        t = tail;
        await t;
      } while (t !== tail);
    },
  };
}

/**
 * At boot /run is empty: restores the unit env file from its last-known-good copy before the
 * dependent units start (`ExecStartPre=… restore` in the shim's unit, and again at `run`), so
 * that they start with the last env they had even while the server is unreachable. An existing
 * unit file is never replaced. Returns whether it restored.
 */
export async function restoreLastKnownGood(files: FilePaths, log: Logger): Promise<boolean> {
  if (await readIfExists(files.unitEnvFile)) return false;
  const lkg = await readIfExists(files.lastKnownGoodFile);
  if (!lkg) return false;
  await writeFileAtomic(files.unitEnvFile, lkg, { dirMode: 0o700 });
  log.info("restored the unit env file from its last-known-good copy", {
    file: files.unitEnvFile,
    from: files.lastKnownGoodFile,
  });
  return true;
}

// --- internal ---

/** What secretsd accepts in an ack's unit map (server/secrets/presence.ts checkAck). */
const MAX_ACK_UNITS = 256;

/**
 * The ack fields that carry the unit map: `*` (every key) is sent as no keys. A unit with more
 * keys than an ack may carry is sent as reading every key (a plan then over-reports, never
 * misses it); more units than that are not sent at all (the VM's unit map stays unknown).
 */
function ackedUnitMap(
  units: readonly UnitSpec[] | undefined,
  log: Logger,
): Pick<AckRequest, "units" | "unitsReported"> {
  if (units === undefined) return {};
  if (units.length > MAX_ACK_UNITS) {
    log.warn("too many units to report to secretsd; `rotate --plan` will not know them", {
      units: units.length,
      max: MAX_ACK_UNITS,
    });
    return {};
  }
  return {
    unitsReported: true,
    units: units.map((u) => ({
      name: u.name,
      keys: u.keys.includes("*") || u.keys.length > MAX_ACK_UNITS ? [] : [...u.keys],
      action: u.action,
    })),
  };
}

interface RenderedFiles {
  unitFile: string;
  envD: string;
  /** Names left out of either file, sorted. */
  omitted: string[];
  /** What the unit file carries: name → value. */
  unitFileValues: Map<string, string>;
}

/** Renders both dialects; logs each var a dialect leaves out, by name and reason. */
function render(values: Map<string, string>, f: FilePaths, log: Logger): RenderedFiles {
  const unitFile = renderEnvironmentFile(values);
  const envD = renderEnvironmentD(values);
  for (const [file, r] of [
    [f.unitEnvFile, unitFile],
    [f.environmentDFile, envD],
  ] as const) {
    for (const o of r.omitted)
      log.warn("env var left out", { name: o.name, file, reason: o.reason });
  }
  const left = new Set(unitFile.omitted.map((o) => o.name));
  return {
    unitFile: unitFile.text,
    envD: envD.text,
    omitted: [...new Set([...unitFile.omitted, ...envD.omitted].map((o) => o.name))].sort(),
    unitFileValues: new Map([...values].filter(([k]) => !left.has(k))),
  };
}

interface Written {
  changedFiles: string[];
  previousUnitFile: Buffer | undefined;
}

/** Writes the unit file, its persistent copy and the environment.d file, each if changed. */
async function writeAll(f: FilePaths, r: RenderedFiles): Promise<Written> {
  const unit = await writeFileAtomic(f.unitEnvFile, r.unitFile, { dirMode: 0o700 });
  const lkg = await writeFileAtomic(f.lastKnownGoodFile, r.unitFile, { dirMode: 0o700 });
  const envD = await writeFileAtomic(f.environmentDFile, r.envD, { dirMode: 0o755 });
  return {
    changedFiles: [
      unit.changed ? f.unitEnvFile : "",
      lkg.changed ? f.lastKnownGoodFile : "",
      envD.changed ? f.environmentDFile : "",
    ].filter(Boolean),
    previousUnitFile: unit.previous,
  };
}

/**
 * What changed for the units: a name whose secret or version differs from what the files held,
 * or whose value differs from what the unit file held (a secret deleted and re-created keeps
 * its version; a unit file that did not exist means the units started without any of it).
 */
function changedNames(
  written: ReadonlyMap<string, string>,
  versions: ReadonlyMap<string, string>,
  previousUnitFile: Buffer | undefined,
  unitFileValues: ReadonlyMap<string, string>,
): Set<string> {
  const changed = diffNames(written, versions);
  const before = previousUnitFile
    ? parseEnvironmentFile(previousUnitFile.toString("utf8"))
    : new Map<string, string>();
  // An unparseable old file (another writer, another format): versions alone decide.
  if (before) for (const n of diffNames(before, unitFileValues)) changed.add(n);
  return changed;
}
