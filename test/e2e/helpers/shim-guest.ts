/**
 * The built shim in a booted nspawn machine (./nspawn.ts), for e2e tests: check the build is
 * there, install the shim with dependent units and quick timings, read its journal.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { SECRETSD } from "../../helpers/process.js";
import type { Container } from "./nspawn.js";

/** The built dist/ on the host; bind it read-only at {@link DIST_IN} inside. */
export const DIST = resolve(import.meta.dirname, "../../../dist");
export const DIST_IN = "/opt/vm-auth/dist";
/** Where `install` copies the shim (needs a writable /usr/local inside). */
export const INSTALLED = "/usr/local/lib/vm-auth/shim.cjs";

/** Throws unless dist/shim.cjs and secretsd are built (not the build script's placeholder). */
export function requireBuilt(): void {
  for (const f of [resolve(DIST, "shim.cjs"), SECRETSD]) {
    if (!existsSync(f) || readFileSync(f, "utf8").includes("not built yet")) {
      throw new Error(`${f} is missing: run \`npm run build\` first`);
    }
  }
}

/** A small `NAME` → a service that only sleeps (Type=exec: /proc/MainPID/environ is its own). */
export async function writeSleeper(c: Container, name: string): Promise<void> {
  await c.writeFile(
    `/etc/systemd/system/${name}.service`,
    `[Unit]\nDescription=${name}\n[Service]\nType=exec\nExecStart=/bin/sh -c 'exec sleep infinity'\n[Install]\nWantedBy=multi-user.target\n`,
  );
}

/**
 * `vm-auth-shim install … --enable --now` from the bound dist, with short debounce, heartbeat
 * and backoff so a test does not wait on production timings. `units` are `--unit` specs. With
 * `bundle` (a guest bundle's text, fed on stdin as `--bundle -`) instead of server and token file.
 */
export async function installShim(
  c: Container,
  opts: ({ server: string; tokenFile: string } | { bundle: string }) & { units: string[] },
): Promise<string> {
  const timings = ["--debounce-ms", "200", "--heartbeat-ms", "1000"];
  const backoff = ["--backoff-initial-ms", "200", "--backoff-max-ms", "2000"];
  const r = await c.exec(
    [
      "node",
      `${DIST_IN}/shim.cjs`,
      "install",
      ...("bundle" in opts
        ? ["--bundle", "-"]
        : ["--server", opts.server, "--token-file", opts.tokenFile]),
      ...opts.units.flatMap((u) => ["--unit", u]),
      ...timings,
      ...backoff,
      "--enable",
      "--now",
    ],
    "bundle" in opts ? { input: opts.bundle } : {},
  );
  return r.stdout;
}

/** The shim's journal lines (its JSON log), optionally only those at `priority` or above. */
export async function shimJournal(c: Container, priority?: string): Promise<string[]> {
  const r = await c.exec([
    "journalctl",
    "-u",
    "vm-auth-shim.service",
    ...(priority ? ["-p", priority] : []),
    "-o",
    "cat",
    "--no-pager",
  ]);
  return r.stdout.split("\n").filter(Boolean);
}
