/**
 * Issue #11's readiness in a real guest: the built shim under real systemd (252) in a throw-away
 * nspawn machine, against the built secretsd on host 127.0.0.1, for a VM bound to a manifest
 * whose required user_prompt entry has no value. The generated (uuid) and fetched (a file on the
 * host) entries arrive; the missing one is absent from every env file (not even `KEY=`) and from
 * the dependent unit's environ, the shim's journal names it at error level, its ack carries it
 * (audit `env.ack … missing MANIFEST/ID`) and `ListVms` lists it. Once a person provides it, it
 * reaches the env file, the unit that reads it restarts (the other keeps its PID) and the VM is
 * complete. Skips only when nspawn is unavailable, and fails instead when CI is set.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createClient, type VmAuthClient } from "../../client/index.js";
import { type DaemonProcess, spawnDaemon } from "../helpers/process.js";
import { secretValue, testRoot, track } from "../helpers/values.js";
import { bootContainer, type Container, nspawnAvailable } from "./helpers/nspawn.js";
import {
  DIST,
  DIST_IN,
  installShim,
  requireBuilt,
  shimJournal,
  writeSleeper,
} from "./helpers/shim-guest.js";

const avail = nspawnAvailable();
const inCI = Boolean(process.env.CI);
if (!avail.ok) {
  console.warn(
    `manifest-missing e2e: ${inCI ? "FAILING (CI requires it)" : "skipped"}: ${avail.why}`,
  );
}

const VM = "e2e-incomplete";
const MANIFEST = "e2e-app";
const MISSING_ID = `${MANIFEST}/api_key`;
const ENV_FILES = [
  "/run/vm-auth/env",
  "/var/lib/vm-auth/last-known-good.env",
  "/etc/environment.d/vm-auth.conf",
];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const wait = { timeout: 15_000, interval: 50 };

describe.skipIf(!avail.ok && !inCI)(
  "a required manifest entry missing, in a guest (nspawn)",
  () => {
    const host = mkdtempSync(join(tmpdir(), "vm-auth-manifest-e2e-"));
    const dataDir = join(testRoot() ?? host, "manifest-e2e-secretsd");
    const fetchedFile = join(host, "db-password");
    const fetched = secretValue("db");
    let daemon: DaemonProcess | undefined;
    let admin: VmAuthClient;
    let c: Container | undefined;

    const vmRow = async () => {
      const row = (await admin.access.listVms({})).vms.find((v) => v.name === VM);
      if (!row) throw new Error(`vm ${VM} not listed`);
      return row;
    };
    const envAcks = () =>
      readFileSync(join(dataDir, "audit.log"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { action: string; vm?: string; detail?: string })
        .filter((e) => e.action === "env.ack" && e.vm === VM);
    /** The names each of the guest's three env files assigns (an empty `KEY=` counts). */
    const envFileNames = async (m: Container) => {
      const names = new Map<string, string[]>();
      for (const f of ENV_FILES) {
        const assigned = [...(await m.readFile(f)).matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=/gm)];
        names.set(f, assigned.map((a) => a[1] ?? "").sort());
      }
      return names;
    };

    beforeAll(async () => {
      if (!avail.ok) throw new Error(`CI requires the nspawn e2e suite: ${avail.why}`);
      requireBuilt();
      writeFileSync(fetchedFile, `${fetched}\n`, { mode: 0o600 });
      mkdirSync(join(host, "usr-local"));
      daemon = await spawnDaemon(dataDir, ["--listen", "127.0.0.1:0"]);
      admin = createClient({ socket: daemon.socket ?? "" });
      const vm = await admin.access.createVm({ name: VM });
      const applied = await admin.manifests.applyManifest({
        bind: { target: { case: "vm", value: VM } },
        manifest: JSON.stringify({
          name: MANIFEST,
          description: "what the e2e app needs",
          entries: [
            {
              id: "instance",
              class: "per_install_generated",
              env: "INSTANCE_ID",
              generator: { type: "uuid" },
            },
            {
              id: "db",
              class: "remote_fetch",
              env: "DB_PASSWORD",
              fetch: { file: fetchedFile, intervalMs: 60_000 },
            },
            {
              id: "api_key",
              class: "user_prompt",
              env: "API_KEY",
              label: "the app's API key",
              required: true,
              format: "sk-[A-Za-z0-9-]{8,}",
            },
          ],
        }),
      });
      expect(applied.vms.find((v) => v.vm === VM)?.missing).toEqual(["api_key"]);

      const m = await bootContainer({
        // /usr is the host's, read-only: a fresh /usr/local takes the installed shim.
        binds: [`${join(host, "usr-local")}:/usr/local`],
        bindRo: [`${DIST}:${DIST_IN}`],
        timeoutMs: 30_000,
      });
      c = m;
      console.info(`manifest-missing e2e: container ${m.name} booted in ${m.bootMs} ms`);
      await m.writeFile("/etc/vm-auth/token", `${vm.token}\n`, 0o600);
      await writeSleeper(m, "app");
      await writeSleeper(m, "other");
      const t0 = Date.now();
      await installShim(m, {
        server: daemon.tcp ?? "",
        tokenFile: "/etc/vm-auth/token",
        units: ["app.service:INSTANCE_ID,DB_PASSWORD,API_KEY", "other.service:DB_PASSWORD"],
      });
      await m.systemctl("enable", "--now", "app.service", "other.service");
      await vi.waitFor(async () => {
        expect((await m.unitEnv("app.service")).get("DB_PASSWORD")).toBe(fetched);
        const row = await vmRow();
        expect(row.connected && !row.behind && row.appliedRevision >= row.viewRevision).toBe(true);
      }, wait);
      console.info(`manifest-missing e2e: install → app running, acked in ${Date.now() - t0} ms`);
    }, 60_000);

    afterAll(async () => {
      await c?.stop();
      daemon?.child.kill("SIGTERM");
      await daemon?.exited;
      admin?.close();
      rmSync(host, { recursive: true, force: true });
    }, 30_000);

    it("writes what arrived, never the missing key, and says which id is missing", async () => {
      const m = c as Container;
      for (const [file, names] of await envFileNames(m)) {
        expect(names, file).toEqual(["DB_PASSWORD", "INSTANCE_ID"]);
      }
      const env = await m.unitEnv("app.service");
      const instance = track(env.get("INSTANCE_ID") ?? "");
      expect(instance).toMatch(UUID);
      expect(env.get("DB_PASSWORD")).toBe(fetched);
      expect(env.has("API_KEY")).toBe(false);
      expect((await m.unitEnv("other.service")).get("DB_PASSWORD")).toBe(fetched);

      // The shim's journal names the missing entry at error priority: `journalctl -p err` finds
      // it (each line carries its syslog priority when stderr is the journal).
      const said = async () =>
        (await shimJournal(m, "err"))
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { level: string; msg: string; missing?: string[] })
          .filter((l) => l.level === "error" && /required entries are missing/.test(l.msg));
      await vi.waitFor(async () => {
        expect((await said()).map((l) => l.missing)).toEqual([[`${MISSING_ID} API_KEY`]]);
      }, wait);

      // On the host: the VM is incomplete, and the shim's ack said which entry it lacks.
      expect((await vmRow()).missingRequired).toEqual([MISSING_ID]);
      await vi.waitFor(() => {
        expect(envAcks().at(-1)?.detail).toContain(`missing ${MISSING_ID}`);
      }, wait);
    }, 30_000);

    it("once provided, the value reaches the guest, the unit that reads it restarts, the VM is complete", async () => {
      const m = c as Container;
      const pidApp = await m.mainPid("app.service");
      const pidOther = await m.mainPid("other.service");
      const before = await m.unitEnv("app.service");
      const key = secretValue("sk-e2e");
      const t0 = Date.now();
      const provided = await admin.manifests.provideManifestValue({
        manifest: MANIFEST,
        id: "api_key",
        value: key,
      });
      await vi.waitFor(async () => {
        expect((await m.unitEnv("app.service")).get("API_KEY")).toBe(key);
      }, wait);
      console.info(
        `manifest-missing e2e: provide → app restarted with it in ${Date.now() - t0} ms`,
      );
      expect(await m.mainPid("app.service")).not.toBe(pidApp);
      expect(await m.mainPid("other.service")).toBe(pidOther);
      const after = await m.unitEnv("app.service");
      expect(after.get("INSTANCE_ID")).toBe(before.get("INSTANCE_ID"));
      expect(after.get("DB_PASSWORD")).toBe(fetched);
      for (const [file, names] of await envFileNames(m)) {
        expect(names, file).toEqual(["API_KEY", "DB_PASSWORD", "INSTANCE_ID"]);
      }

      await vi.waitFor(async () => {
        const row = await vmRow();
        expect(row).toMatchObject({ connected: true, behind: false, missingRequired: [] });
        expect(row.appliedRevision).toBeGreaterThanOrEqual(provided.revision);
        expect(row.lastRestartedUnits).toEqual(["app.service"]);
      }, wait);
      expect(envAcks().at(-1)?.detail ?? "").not.toContain("missing");
      const journal = await shimJournal(m);
      expect(journal.some((l) => l.includes("no required entry is missing any more"))).toBe(true);
      const values = [key, fetched, after.get("INSTANCE_ID") ?? "?"];
      expect(journal.filter((l) => values.some((v) => l.includes(v)))).toEqual([]);
    }, 30_000);
  },
);
