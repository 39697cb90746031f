/**
 * createDaemon wires the parts: data dir lock → store → master key → barrier → audit →
 * use cases → gRPC listeners. `stop()` runs health NOT_SERVING → end watch streams →
 * tryShutdown (calls in flight finish) → forced shutdown after the grace period → close
 * store and audit → zero keys → release the lock.
 */
import { chmod, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { createAuditBroker } from "./audit/audit.js";
import { createFileAuditDevice } from "./audit/devices/file.js";
import { createBarrier } from "./barrier/barrier.js";
import { loadMasterKey } from "./barrier/master-key.js";
import type { ServerConfig } from "./config.js";
import { lockDataDir } from "./lock.js";
import type { Logger } from "./logger.js";
import { createAccessUseCases } from "./secrets/access.js";
import type { DamageRegistry } from "./secrets/damage.js";
import { createDamageRegistry, dropDamaged } from "./secrets/damage.js";
import { createEnvUseCases } from "./secrets/env.js";
import { createExpiryWatcher } from "./secrets/expiry.js";
import { createManifestUseCases } from "./secrets/manifest/manifests.js";
import { createValueRefresher } from "./secrets/manifest/refresher.js";
import { createOAuthUseCases } from "./secrets/oauth/oauth.js";
import { createRotationPlanner } from "./secrets/rotation-plan.js";
import type { CronClock } from "./secrets/schedule/cron-scheduler.js";
import { createSecretUseCases } from "./secrets/secrets.js";
import { createSystemUseCases } from "./secrets/system.js";
import { createUsageReporter } from "./secrets/usage.js";
import { createWatchHub } from "./secrets/watch.js";
import { createSnapshotJournalDriver } from "./store/drivers/snapshot-journal.js";
import type { Store } from "./store/store.js";
import { openStore } from "./store/store.js";
import { createTransport } from "./transport/server.js";

export type DaemonState = "starting" | "serving" | "stopping" | "stopped";

export interface Daemon {
  readonly state: DaemonState;
  /** Starts and resolves with the bound addresses; throws (after cleaning up) on failure. */
  start(): Promise<{ socket: string | null; tcp: string | null }>;
  stop(): Promise<void>;
  /**
   * Reopens the audit log at its path (SIGHUP, after logrotate moved it). No entry is lost or
   * written twice. A no-op before `start` has opened it.
   * @throws when the file cannot be opened; entries keep going to the old one
   */
  reopenAudit(): void;
}

export const VERSION = "0.1.0";

/** What tests may replace. */
export interface DaemonOptions {
  /** Drives manifest rotation schedules (a fake clock in tests). @default real time */
  clock?: CronClock;
}

export function createDaemon(config: ServerConfig, log: Logger, opts: DaemonOptions = {}): Daemon {
  let state: DaemonState = "starting";
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopImpl: (() => Promise<void>) | undefined;
  let reopenAudit: (() => void) | undefined;

  const runCleanups = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log.error("cleanup failed", { err });
      }
    }
    cleanups.length = 0;
  };

  return {
    get state() {
      return state;
    },
    async start() {
      try {
        await prepareDataDir(config.dataDir, log);
        const lock = await lockDataDir(config.dataDir);
        cleanups.push(() => lock.release());
        // Damage in the store's files refuses the start, naming it, unless --repair accepts it.
        const driver = createSnapshotJournalDriver({
          file: join(config.dataDir, "store.json"),
          repair: config.repair,
          log: log.child({ component: "store" }),
        });
        const store = await openStore(driver);
        cleanups.push(() => store.close());
        const mk = await loadMasterKey(config.dataDir, store.data.keyring?.masterKeyId);
        if (mk.created)
          log.info("created master key", { file: join(config.dataDir, "master.key") });
        const barrier = await createBarrier(mk.key, store.data.keyring);
        mk.key.fill(0);
        cleanups.push(() => barrier.zero());
        if (!store.data.keyring) {
          await store.mutate((_head, tx) => tx.setKeyring(barrier.keyring));
        }
        const damage = createDamageRegistry(barrier);
        await checkCiphertexts(store, damage, log, config.repair);
        const auditLog = log.child({ component: "audit" });
        const auditFile = join(config.dataDir, "audit.log");
        const audit = createAuditBroker(
          [
            createFileAuditDevice(auditFile, {
              maxBytes: config.audit.maxBytes,
              keep: config.audit.keep,
              onRotateError: (err) => auditLog.error("audit log rotation failed", { err }),
            }),
          ],
          auditLog,
        );
        cleanups.push(() => {
          reopenAudit = undefined;
          return audit.close();
        });
        reopenAudit = () => {
          audit.reopen();
          auditLog.info("audit log reopened", { file: auditFile });
        };
        const deps = { store, barrier, audit, log, damage };
        const hub = createWatchHub({ ...deps, heartbeatMs: config.heartbeatMs });
        // Closed before the store (cleanups run in reverse): refreshes in flight settle first.
        const oauth = createOAuthUseCases({ ...deps, oauth: config.oauth });
        cleanups.push(() => oauth.close());
        const refresher = createValueRefresher(deps, opts.clock ? { clock: opts.clock } : {});
        cleanups.push(() => refresher.close());
        const expiry = createExpiryWatcher(deps, { warningMs: config.expiryWarningMs });
        cleanups.push(() => expiry.close());
        const manifests = createManifestUseCases(deps);
        cleanups.push(() => manifests.close());
        const transport = createTransport({
          secrets: createSecretUseCases(deps),
          access: createAccessUseCases(deps),
          env: createEnvUseCases(deps),
          oauth,
          manifests,
          system: createSystemUseCases({
            ...deps,
            dataDir: config.dataDir,
            startedAt: new Date(),
            storeWarnings: driver.report()?.warnings ?? [],
            expiryWarningMs: config.expiryWarningMs,
          }),
          rotationPlan: createRotationPlanner(deps, hub.presence),
          usage: createUsageReporter(deps, hub.presence),
          hub,
          audit,
          log,
          version: VERSION,
          heartbeatMs: config.heartbeatMs,
        });
        const addresses = await transport.listen(config);
        transport.setServing(true);
        // Anything due or expired while secretsd was down is refreshed now.
        oauth.start();
        refresher.start();
        expiry.start();
        state = "serving";
        stopImpl = async () => {
          transport.setServing(false);
          hub.close();
          await transport.shutdown(config.shutdownGraceMs);
        };
        log.info("secretsd serving", {
          ...addresses,
          dataDir: config.dataDir,
          revision: store.data.revision,
        });
        return addresses;
      } catch (err) {
        state = "stopped";
        await runCleanups();
        throw err;
      }
    },
    reopenAudit() {
      reopenAudit?.();
    },
    async stop() {
      if (state === "stopped" || state === "stopping") return;
      state = "stopping";
      await stopImpl?.();
      await runCleanups();
      state = "stopped";
      log.info("secretsd stopped");
    },
  };
}

// --- internal ---

/** The data dir is 0700: it holds the master key. A looser existing dir is tightened. */
async function prepareDataDir(dir: string, log: Logger) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if ((st.mode & 0o077) !== 0) {
    log.warn("data dir was accessible to group or others; setting mode 0700", { dataDir: dir });
    await chmod(dir, 0o700);
  }
}

/**
 * Opens every stored ciphertext once (XChaCha20-Poly1305: a few µs each) so that damage is
 * named at start, not found by the first VM that needs it. A damaged secret does not stop
 * the daemon: it is logged here, shown by `status` and `vm list`, and the views that need it
 * fail with FAILED_PRECONDITION naming it.
 */
async function checkCiphertexts(
  store: Store,
  damage: DamageRegistry,
  log: Logger,
  repair: boolean,
) {
  const { damaged, checked, ms } = damage.verifyAll(store.data);
  log.info("ciphertexts checked", { checked, damaged: damaged.length, ms: Math.round(ms) });
  if (damaged.length === 0) return;
  if (repair) {
    // --repair accepts the loss explicitly, and says exactly what it was.
    for (const d of await dropDamaged(store, damaged)) {
      log.warn("dropped damaged secret versions", {
        secret: d.secret,
        versions: d.versions,
        ...(d.current === undefined ? { removed: true } : { current: d.current }),
      });
    }
    return;
  }
  for (const d of damaged) {
    log.error("damaged secret: its stored ciphertext does not decrypt", {
      secret: d.secret,
      version: d.version,
      fix: "rotate it, roll it back, or start with --repair to drop the version",
    });
  }
}
