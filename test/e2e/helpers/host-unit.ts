/**
 * secretsd installed as the host service (`secretsd install`) in a booted nspawn machine
 * (./nspawn.ts), for e2e tests: the built dist/ and the runtime node_modules bound read-only
 * where a global npm install would put them, a writable /usr/local for the installed copy,
 * secretsctl run inside as root, and `systemd-analyze security` parsed.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { bootContainer, type Container, type ExecResult } from "./nspawn.js";

const REPO = resolve(import.meta.dirname, "../../..");
/** Inside: the package as npm would lay it out (dist/ beside its node_modules/). */
export const PKG_IN = "/opt/vm-auth";
export const SECRETSD_IN = `${PKG_IN}/dist/bin/secretsd.js`;
export const SECRETSCTL_IN = `${PKG_IN}/dist/bin/secretsctl.js`;
export const SERVICE_SOCKET = "/run/secretsd/secretsd.sock";

/** Throws unless the secretsd and secretsctl bundles are built. */
export function requireBuiltHost(): void {
  for (const f of ["dist/bin/secretsd.js", "dist/bin/secretsctl.js"]) {
    if (!existsSync(join(REPO, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
  }
}

/** Boots a machine with the package bound read-only and `usrLocal` (a host dir) as /usr/local. */
export async function bootHost(usrLocal: string): Promise<Container> {
  mkdirSync(usrLocal, { recursive: true });
  return bootContainer({
    binds: [`${usrLocal}:/usr/local`],
    bindRo: [
      `${join(REPO, "dist")}:${PKG_IN}/dist`,
      `${join(REPO, "node_modules")}:${PKG_IN}/node_modules`,
    ],
    timeoutMs: 30_000,
  });
}

/** `node secretsd.js ARGS` inside (install, uninstall); rejects on a non-zero exit. */
export function secretsd(c: Container, args: string[], allowFail = false): Promise<ExecResult> {
  return c.exec(["node", SECRETSD_IN, ...args], { allowFail, timeoutMs: 60_000 });
}

/** `secretsctl ARGS` inside as root, with no socket named: it must find the service's. */
export function secretsctl(
  c: Container,
  args: string[],
  opts: { input?: string; allowFail?: boolean } = {},
): Promise<ExecResult> {
  return c.exec(["node", SECRETSCTL_IN, ...args], {
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    allowFail: opts.allowFail ?? false,
  });
}

/** Waits until `path` exists inside (the socket: Type=exec counts as started before it listens). */
export async function waitForPath(c: Container, path: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.exec(["test", "-e", path], { allowFail: true });
    if (r.code === 0) return;
    if (Date.now() > deadline) {
      const j = await c.exec(["journalctl", "-u", "secretsd", "--no-pager", "-n", "30"], {
        allowFail: true,
      });
      throw new Error(`${path} did not appear within ${timeoutMs} ms\n${j.stdout}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `systemd-analyze security UNIT`: the overall exposure and the findings that still count. */
export async function securityOf(
  c: Container,
  unit: string,
): Promise<{ exposure: number; rating: string; open: string[] }> {
  const r = await c.exec(["systemd-analyze", "security", "--no-pager", unit], {
    env: { SYSTEMD_COLORS: "0" },
  });
  const m = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(r.stdout);
  if (!m) throw new Error(`no exposure level in:\n${r.stdout}`);
  // Lines of a finding that is not satisfied start with ✗ and end with its exposure.
  const open = r.stdout
    .split("\n")
    .filter((l) => l.trimStart().startsWith("✗"))
    .map((l) => l.trim().replace(/\s+/g, " "));
  return { exposure: Number(m[1]), rating: m[2] ?? "", open };
}
