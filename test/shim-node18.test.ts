/**
 * The built shim on the Node a stock guest has: Debian 12's own nodejs 18 (what `apt install
 * nodejs` gives Debian 12 and Ubuntu 24.04), fetched by scripts/debian-node18.sh (.ci/run runs
 * it) and run without installing it: LD_LIBRARY_PATH for libnode, and Debian's externalized
 * builtins (/usr/share/nodejs) overlaid in a private mount namespace (root only), so the host
 * is untouched. Against a real secretsd over TCP: first snapshot, a rotation, `status`.
 * Without the fetched runtime the test skips and says why, except under CI=true, where it fails.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startDaemon, type TestDaemon } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";

const SHIM = resolve(import.meta.dirname, "../dist/shim.cjs");
const NODE18 = process.env.VM_AUTH_NODE18_DIR ?? "/var/cache/vm-auth/node18";
const ROOT = join(NODE18, "root");
const present = existsSync(join(ROOT, "usr/bin/node")) && process.getuid?.() === 0;
const why = `Debian's nodejs 18 is not in ${NODE18} (run scripts/debian-node18.sh as root)`;
if (!present && process.env.CI === "true") throw new Error(`CI=true: ${why}`);

const run = promisify(execFile);
let d: TestDaemon;
const children: ChildProcess[] = [];

/** argv for running `args` under Debian's node 18 in a private mount namespace. */
function node18(args: string[]): { cmd: string; argv: string[]; env: NodeJS.ProcessEnv } {
  const script =
    `mount -t overlay overlay -o lowerdir=${ROOT}/usr/share:/usr/share /usr/share && ` +
    `exec ${ROOT}/usr/bin/node "$@"`;
  return {
    cmd: "unshare",
    argv: ["-m", "sh", "-c", script, "node18", ...args],
    env: { ...process.env, LD_LIBRARY_PATH: join(ROOT, "usr/lib/x86_64-linux-gnu") },
  };
}

beforeAll(async () => {
  if (present) d = await startDaemon({ heartbeatMs: 500 });
});

afterAll(async () => {
  for (const c of children) c.kill("SIGTERM");
  await d?.dispose();
});

describe.skipIf(!present)(`vm-auth-shim on Debian 12's nodejs 18 (${why})`, () => {
  test("runs: version, first snapshot, a rotation, status", async () => {
    const v = node18(["--version"]);
    const version = await run(v.cmd, v.argv, { env: v.env });
    expect(version.stdout).toMatch(/^v18\./);

    const created = await d.client.access.createVm({ name: "old-node" });
    const first = secretValue("sk-node18");
    await d.client.secrets.createSecret({
      name: "openai",
      provider: "openai",
      scope: "vm:old-node",
      value: first,
    });
    const out = mkdtempSync(join(tmpdir(), "vm-auth-node18-"));
    mkdirSync(join(out, "state"), { mode: 0o700 });
    const tokenFile = join(out, "token");
    writeFileSync(tokenFile, `${created.token}\n`, { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    const config = join(out, "shim.json");
    writeFileSync(
      config,
      JSON.stringify({
        server: d.tcp,
        tokenFile,
        environmentDFile: join(out, "environment.d/vm-auth.conf"),
        unitEnvFile: join(out, "run/env"),
        lastKnownGoodFile: join(out, "state/last-known-good.env"),
        stateFile: join(out, "state/state.json"),
        statusFile: join(out, "state/status.json"),
        systemctl: "/bin/true",
      }),
    );
    const r = node18([SHIM, "run", "--config", config]);
    let log = "";
    const child = spawn(r.cmd, r.argv, { env: r.env, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (b: Buffer) => {
      log += b.toString();
    });
    children.push(child);
    const envFile = join(out, "run/env");
    const read = () => (existsSync(envFile) ? readFileSync(envFile, "utf8") : "");
    await until(
      () => read().includes(first),
      () => `first snapshot; shim log:\n${log}`,
    );

    const second = secretValue("sk-node18-rotated");
    await d.client.secrets.rotateSecret({ name: "openai", value: second });
    await until(
      () => read().includes(second),
      () => `rotation; shim log:\n${log}`,
    );
    expect(read()).not.toContain(first);

    const s = node18([SHIM, "status", "--json", "--config", config]);
    const status = JSON.parse((await run(s.cmd, s.argv, { env: s.env })).stdout) as {
      running?: boolean;
      connection?: string;
      vars?: string[];
    };
    expect(status).toMatchObject({
      running: true,
      connection: "connected",
      vars: ["OPENAI_API_KEY"],
    });
    expect(log).not.toMatch(/"level":"error"/);
  });
});

async function until(ok: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
