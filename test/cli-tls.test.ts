/**
 * TLS from the first VM, end to end with the built CLI and a built secretsd: `tls init` makes
 * a CA and a server certificate that openssl itself verifies; secretsd serves TCP with them;
 * `vm add --bundle` / `vm token --bundle` write the one-line guest bundle, and a real gRPC
 * client built from nothing but the bundle reads the VM's env (and fails without the CA).
 * Every refused command leaves the files, the VMs and the tokens as they were, and no error
 * line ever holds a token.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createClient } from "../client/index.js";
import type { GuestBundle } from "../common/bundle.js";
import { decodeBundle } from "../common/bundle.js";
import type { CliOptions, CliResult } from "./helpers/cli.js";
import { failed, ok, runCli, value } from "./helpers/cli.js";
import type { DaemonProcess } from "./helpers/process.js";
import { spawnDaemon } from "./helpers/process.js";
import { testRoot } from "./helpers/values.js";

let work: string;
/** Every stderr of this file's runs, and every token issued, for the final leak check. */
const stderrs: string[] = [];
const tokens: string[] = [];

async function cli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  stderrs.push(r.stderr);
  return r;
}

beforeAll(async () => {
  // Outside the suite root: bundles hold tokens, and the root is left for the leak check.
  work = await mkdtemp(join(tmpdir(), "cli-tls-"));
});
afterAll(async () => {
  expect(tokens.length).toBeGreaterThan(0);
  const all = stderrs.join("\n");
  for (const t of tokens) expect(all.includes(t), "a token reached stderr").toBe(false);
  expect(all).not.toMatch(/vmat_[A-Za-z0-9_-]{8}/);
  await rm(work, { recursive: true, force: true });
});

const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8" });
const mode = (f: string) => statSync(f).mode & 0o777;
/** Every file of a dir with its bytes and mtime: what "changes nothing" compares. */
const snapshot = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .sort()
        .map((n) => [n, readFileSync(join(dir, n), "base64"), statSync(join(dir, n)).mtimeMs])
    : "absent";
const caFingerprint = (dir: string) =>
  openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", join(dir, "ca.pem"))
    .trim()
    .replace(/^sha256 Fingerprint=/i, "SHA256:");

// Each CLI run is a node start (about 0.5-1 s on a loaded machine); some tests make ten.
describe("tls init", { timeout: 45_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = join(work, "tls");
  });

  test("makes a CA and a server certificate openssl verifies, with the SANs, keys 0600", async () => {
    const r = await cli(
      ["tls", "init", "--san", "192.168.122.1", "--san", "Host.Example", "--san", "fd00::1"].concat(
        ["--dir", dir, "--port", "3091"],
      ),
    );
    const stdout = ok(r);
    expect(r.stderr).toBe("");
    expect(openssl("verify", "-CAfile", join(dir, "ca.pem"), join(dir, "server.pem")).trim()).toBe(
      `${join(dir, "server.pem")}: OK`,
    );
    const server = openssl("x509", "-noout", "-text", "-in", join(dir, "server.pem"));
    expect(server).toMatch(
      /Subject Alternative Name: \n\s+IP Address:192\.168\.122\.1, DNS:host\.example, IP Address:FD00:0:0:0:0:0:0:1, IP Address:127\.0\.0\.1, DNS:localhost\n/,
    );
    expect(server).toMatch(/Basic Constraints: critical\n\s+CA:FALSE/);
    expect(server).toMatch(/Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    expect(server).toMatch(/Public Key Algorithm: id-ecPublicKey[\s\S]*ASN1 OID: prime256v1/);
    const ca = openssl("x509", "-noout", "-text", "-in", join(dir, "ca.pem"));
    expect(ca).toMatch(/Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    expect(ca).toMatch(/Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(ca).toMatch(/Subject: CN = vm-auth CA \S+/);
    // The CA for ten years, the server certificate for 825 days (default).
    const days = (f: string) =>
      (Date.parse(openssl("x509", "-noout", "-enddate", "-in", f).trim().slice(9)) - Date.now()) /
      86_400_000;
    expect(days(join(dir, "ca.pem"))).toBeCloseTo(3650, 0);
    expect(days(join(dir, "server.pem"))).toBeCloseTo(825, 0);
    expect(readdirSync(dir).sort()).toEqual([
      "ca.key",
      "ca.pem",
      "guest.json",
      "server.key",
      "server.pem",
    ]);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, "ca.key"))).toBe(0o600);
    expect(mode(join(dir, "server.key"))).toBe(0o600);
    expect(mode(join(dir, "ca.pem"))).toBe(0o644);
    expect(mode(join(dir, "server.pem"))).toBe(0o644);
    expect(JSON.parse(readFileSync(join(dir, "guest.json"), "utf8"))).toEqual({
      server: "192.168.122.1:3091",
    });
    expect(stdout).toContain(`CA fingerprint  ${caFingerprint(dir)}\n`);
    expect(stdout).toContain(
      `secretsd --listen 192.168.122.1:3091 --tls-cert ${dir}/server.pem --tls-key ${dir}/server.key`,
    );
    expect(stdout).not.toContain("PRIVATE KEY");
  });

  test("a second init refuses, naming --force, and changes nothing", async () => {
    const before = snapshot(dir);
    const msg = failed(await cli(["tls", "init", "--san", "10.0.0.9", "--dir", dir]), 1, "--force");
    expect(msg).toContain(join(dir, "server.pem"));
    expect(snapshot(dir)).toEqual(before);
  });

  test("--force re-issues under the same CA with the new SANs", async () => {
    const ca = readFileSync(join(dir, "ca.pem"), "utf8");
    const caKey = readFileSync(join(dir, "ca.key"), "utf8");
    const fp = caFingerprint(dir);
    const oldServer = readFileSync(join(dir, "server.pem"), "utf8");
    const stdout = ok(
      await cli(["tls", "init", "--san", "vmhost.lan", "--dir", dir, "--force", "--days", "90"]),
    );
    expect(stdout).toMatch(/^kept CA /m);
    expect(readFileSync(join(dir, "ca.pem"), "utf8")).toBe(ca);
    expect(readFileSync(join(dir, "ca.key"), "utf8")).toBe(caKey);
    expect(caFingerprint(dir)).toBe(fp);
    expect(stdout).toContain(`CA fingerprint  ${fp}\n`);
    expect(readFileSync(join(dir, "server.pem"), "utf8")).not.toBe(oldServer);
    openssl("verify", "-CAfile", join(dir, "ca.pem"), join(dir, "server.pem"));
    const sans = openssl(
      "x509",
      "-noout",
      "-ext",
      "subjectAltName",
      "-in",
      join(dir, "server.pem"),
    );
    expect(sans).toContain("DNS:vmhost.lan, IP Address:127.0.0.1, DNS:localhost");
    expect(sans).not.toContain("192.168.122.1");
    expect(mode(join(dir, "server.key"))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, "guest.json"), "utf8"))).toEqual({
      server: "vmhost.lan:3090",
    });
    // No staging leftovers.
    expect(readdirSync(dir)).toHaveLength(5);
  });

  test("a CA without its key, or with another key, is never signed with; nothing is written", async () => {
    const odd = join(work, "odd");
    ok(await cli(["tls", "init", "--san", "odd.example", "--dir", odd]));
    await writeFile(join(odd, "ca.key"), readFileSync(join(odd, "server.key")));
    let before = snapshot(odd);
    const init = () => cli(["tls", "init", "--san", "odd.example", "--dir", odd, "--force"]);
    failed(await init(), 1, `${join(odd, "ca.key")}: is not the key of ${join(odd, "ca.pem")}`);
    expect(snapshot(odd)).toEqual(before);
    await rm(join(odd, "ca.key"));
    before = snapshot(odd);
    failed(await init(), 1, /ca\.pem is there without ca\.key/);
    expect(snapshot(odd)).toEqual(before);
  });

  test("a bad --san, --port or --days is refused, naming the flag, with nothing written", async () => {
    const fresh = join(work, "never");
    for (const san of ["999.1.1.1", "a_b.example", "fd00:::1", "1.2.3", "host."]) {
      failed(
        await cli(["tls", "init", "--san", "ok.example", "--san", san, "--dir", fresh]),
        2,
        "--san",
      );
    }
    failed(await cli(["tls", "init", "--dir", fresh]), 2, "--san: give at least one");
    failed(
      await cli(["tls", "init", "--san", "h.example", "--port", "70000", "--dir", fresh]),
      2,
      "--port",
    );
    failed(
      await cli(["tls", "init", "--san", "h.example", "--days", "4000", "--dir", fresh]),
      2,
      "--days",
    );
    failed(
      await cli(["tls", "init", "--san", "h.example", "--sna", "x", "--dir", fresh]),
      2,
      "--sna",
    );
    expect(existsSync(fresh)).toBe(false);
    // Into an existing dir, even with --force: nothing changes.
    const before = snapshot(dir);
    failed(await cli(["tls", "init", "--san", "bad_name", "--dir", dir, "--force"]), 2, "--san");
    expect(snapshot(dir)).toEqual(before);
  });

  test("the default dir is <data dir>/tls, the one secretsd picks up without flags", async () => {
    const home = join(work, "home");
    const r = await cli(["tls", "init", "--san", "10.1.2.3"], { env: { VM_AUTH_HOME: home } });
    expect(ok(r)).toContain(
      `secretsd --listen 10.1.2.3:3090   (uses ${home}/tls/server.pem and server.key)`,
    );
    expect(mode(home)).toBe(0o700);
    expect(mode(join(home, "tls", "server.key"))).toBe(0o600);
    const show = ok(await cli(["tls", "show"], { env: { VM_AUTH_HOME: home } }));
    expect(show).toContain(`CA fingerprint  ${caFingerprint(join(home, "tls"))}\n`);
    expect(show).toContain("server SANs     IP:10.1.2.3, IP:127.0.0.1, DNS:localhost\n");
    expect(show).toContain("guest address   10.1.2.3:3090\n");
  });

  test("tls show warns when the server certificate ends within 30 days; no CA is an error", async () => {
    const soon = join(work, "soon");
    ok(await cli(["tls", "init", "--san", "soon.example", "--dir", soon, "--days", "10"]));
    const r = await cli(["tls", "show", "--dir", soon]);
    expect(ok(r)).toContain("server SANs     DNS:soon.example, IP:127.0.0.1, DNS:localhost\n");
    expect(r.stderr).toMatch(
      /^secretsctl: warning: the server certificate expires in 9d \(\d{4}-\d\d-\d\d\); re-issue it with 'secretsctl tls init --san … --force' \(the CA is kept\)\n$/,
    );
    const j = JSON.parse(ok(await cli(["tls", "show", "--dir", soon, "--json"]))) as {
      ca: { fingerprint: string };
      server: { sans: string[]; signedByCa: boolean };
    };
    expect(j.ca.fingerprint).toBe(caFingerprint(soon));
    expect(j.server.signedByCa).toBe(true);
    const long = await cli(["tls", "show", "--dir", dir]);
    expect(long.stderr).toBe("");
    failed(await cli(["tls", "show", "--dir", join(work, "none")]), 1, "no CA in");
  });
});

describe("guest bundles against a real secretsd serving the generated certificate", {
  timeout: 45_000,
}, () => {
  let tls: string;
  let data: string;
  let p: DaemonProcess;
  let port: string;
  let openaiKey: string;
  /** The CLI on secretsd's unix socket, bundles defaulting from our TLS dir. */
  const admin = (...args: string[]) => cli([...args, "--socket", join(data, "secretsd.sock")]);
  const vmNames = async () =>
    (JSON.parse(ok(await admin("vm", "list", "--json"))) as { vms: { name: string }[] }).vms.map(
      (v) => v.name,
    );

  /** A client built from the bundle alone: its server, its token, its CA. */
  async function clientFrom(b: GuestBundle, withCa = true) {
    const caFile = join(work, `ca-${Math.random().toString(36).slice(2)}.pem`);
    if (b.ca) await writeFile(caFile, b.ca);
    return createClient({
      server: b.server,
      token: b.token,
      tls: withCa ? caFile : true,
      deadlineMs: 3000,
    });
  }
  const readBundle = (f: string) => {
    const b = decodeBundle(readFileSync(f, "utf8"));
    tokens.push(b.token);
    return b;
  };

  beforeAll(async () => {
    tls = join(work, "guest-tls");
    // Under the suite root, so its store, audit log and log are scanned for the secret value.
    data = await mkdtemp(join(testRoot() ?? work, "cli-tls-data-"));
    ok(await cli(["tls", "init", "--san", "127.0.0.1", "--dir", tls]));
    p = await spawnDaemon(data, [
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      join(tls, "server.pem"),
      "--tls-key",
      join(tls, "server.key"),
    ]);
    port = (p.tcp ?? "").split(":")[1] ?? "";
    // guest.json with secretsd's real port; the CA is kept, so the running daemon's
    // certificate stays valid for guests.
    ok(await cli(["tls", "init", "--san", "127.0.0.1", "--dir", tls, "--port", port, "--force"]));
    openaiKey = value("sk-tls");
    ok(await admin("add", "openai", openaiKey));
  });
  afterAll(async () => {
    p?.child.kill("SIGTERM");
    await p?.exited;
  });

  test("vm add --bundle: a gRPC client from the bundle alone gets the VM's env; without the CA the handshake fails", async () => {
    const f = join(work, "web1.bundle");
    const r = await admin(
      "vm",
      "add",
      "web1",
      "--bundle",
      f,
      "--server-address",
      `127.0.0.1:${port}`,
      "--tls-dir",
      tls,
    );
    expect(ok(r)).toBe("");
    expect(r.stderr).toBe(
      `secretsctl: vm web1 added; wrote the bundle to ${f} (0600): server 127.0.0.1:${port}, the VM's token and the CA (${tls}/ca.pem); it is a secret: copy it to the VM, run 'vm-auth-shim install --bundle ${f}' there, and delete this copy\n`,
    );
    expect(mode(f)).toBe(0o600);
    expect(readFileSync(f, "utf8")).toMatch(/^vmauth-bundle-v1:[A-Za-z0-9_-]+\n$/);
    const b = readBundle(f);
    expect(b.server).toBe(`127.0.0.1:${port}`);
    expect(b.ca).toBe(readFileSync(join(tls, "ca.pem"), "utf8"));
    expect(b.insecure).toBeUndefined();
    const vm = await clientFrom(b);
    const env = await vm.env.getEnv({});
    expect(env.snapshot?.vars.find((v) => v.name === "OPENAI_API_KEY")?.value).toBe(openaiKey);
    vm.close();
    // The system CAs do not know ours: TLS refuses the server before any token is sent.
    const noCa = await clientFrom(b, false);
    await expect(noCa.env.getEnv({})).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/certificate/i),
    });
    noCa.close();
  });

  test("vm token --bundle (address from guest.json) issues a working bundle; the old token stops working", async () => {
    const old = readBundle(join(work, "web1.bundle"));
    const f = join(work, "web1-2.bundle");
    const j = JSON.parse(
      ok(await admin("vm", "token", "web1", "--bundle", f, "--tls-dir", tls, "--json")),
    ) as Record<string, unknown>;
    expect(j).toEqual({ name: "web1", bundle: f, keptOthers: false });
    const b = readBundle(f);
    expect(b.server).toBe(`127.0.0.1:${port}`);
    expect(b.token).not.toBe(old.token);
    const vm = await clientFrom(b);
    expect((await vm.env.getEnv({})).snapshot?.vars.map((v) => v.name)).toContain("OPENAI_API_KEY");
    vm.close();
    const stale = await clientFrom(old);
    await expect(stale.env.getEnv({})).rejects.toMatchObject({ code: "unauthenticated" });
    stale.close();
  });

  test("--bundle - prints the bundle alone on stdout; --json gives the path, never the token", async () => {
    const r = await admin("vm", "add", "web2", "--bundle", "-", "--tls-dir", tls);
    const b = decodeBundle(ok(r));
    tokens.push(b.token);
    expect(r.stdout).toMatch(/^vmauth-bundle-v1:[A-Za-z0-9_-]+\n$/);
    expect(r.stderr).toContain("the bundle on stdout: server 127.0.0.1:");
    const vm = await clientFrom(b);
    expect((await vm.env.getEnv({})).snapshot?.vars.length).toBeGreaterThan(0);
    vm.close();
    const f = join(work, "web3.bundle");
    const out = ok(await admin("vm", "add", "web3", "--bundle", f, "--tls-dir", tls, "--json"));
    const j = JSON.parse(out) as { vm: { name: string }; bundle: string; token?: string };
    expect(j.vm.name).toBe("web3");
    expect(j.bundle).toBe(f);
    expect(j.token).toBeUndefined();
    expect(out).not.toContain(readBundle(f).token);
  });

  /** The VMs and the scratch files: what a refused command must leave as they were. */
  const state = async () => ({ vms: await vmNames(), files: readdirSync(work).sort() });
  const web9 = () => join(work, "web9.bundle");

  test("a bad --server-address, or a bundle flag without --bundle, is refused before the VM exists", async () => {
    const before = await state();
    const add = (...args: string[]) => admin("vm", "add", "web9", ...args);
    const f = web9();
    failed(await add("--bundle", f, "--server-address", "not an address"), 2, "--server-address");
    failed(await add("--bundle", f, "--server-address", "127.0.0.1:99999"), 2, "--server-address");
    failed(
      await add("--server-address", `127.0.0.1:${port}`),
      2,
      "--server-address is for --bundle",
    );
    // Under --json the error itself may be JSON: check the code and that it names the flags.
    const both = await add("--bundle", "-", "--json", "--tls-dir", tls);
    expect(both.code, both.stderr).toBe(2);
    expect(both.stdout).toBe("");
    expect(both.stderr).toMatch(/--bundle - .*--json/);
    expect(await state()).toEqual(before);
  });

  test("a CA that cannot be used, or none for a non-loopback address, is refused before the VM exists", async () => {
    const empty = join(work, "no-tls");
    await mkdir(empty, { recursive: true });
    const odd = join(work, "odd-guest");
    await mkdir(odd, { recursive: true });
    await writeFile(join(odd, "guest.json"), "null\n");
    const before = await state();
    const add = (...args: string[]) => admin("vm", "add", "web9", "--bundle", web9(), ...args);
    const ca = join(tls, "ca.pem");
    failed(
      await add("--bundle-ca", ca, "--insecure", "--tls-dir", tls),
      2,
      "--bundle-ca or --insecure",
    );
    failed(
      await add("--bundle-ca", join(tls, "guest.json"), "--tls-dir", tls),
      1,
      /^secretsctl: --bundle-ca: .*guest\.json: is not a PEM certificate$/,
    );
    failed(
      await add("--server-address", "192.168.122.1:3090", "--tls-dir", empty),
      2,
      /--bundle-ca: no CA for 192\.168\.122\.1:3090 .*--insecure/,
    );
    failed(await add("--tls-dir", empty), 2, "--server-address: needed");
    failed(await add("--tls-dir", odd), 1, `${join(odd, "guest.json")}: server: must be HOST:PORT`);
    expect(await state()).toEqual(before);
  });

  test("an existing bundle file is kept without --force; a failed create or issue leaves no file", async () => {
    const web1 = join(work, "web1.bundle");
    const before = await state();
    const text = readFileSync(web1, "utf8");
    failed(
      await admin("vm", "add", "web9", "--bundle", web1, "--tls-dir", tls),
      1,
      /--bundle: .* exists.*--force/,
    );
    failed(await admin("vm", "token", "web1", "--bundle", web1, "--tls-dir", tls), 1, "--force");
    expect(readFileSync(web1, "utf8")).toBe(text);
    // The server refuses (web1 exists; nosuch does not): the claimed file is removed again.
    // (Exit codes of server refusals are errors.ts's table; the point here is the file.)
    for (const args of [
      ["vm", "add", "web1"],
      ["vm", "token", "nosuch"],
    ]) {
      const r = await admin(...args, "--bundle", web9(), "--tls-dir", tls);
      expect(r.code, r.stderr).toBeGreaterThan(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(new RegExp(`^secretsctl: .*${args[2]}.*\\n$`));
    }
    expect(await state()).toEqual(before);
    // The refused `vm token web1` issued nothing: the current token still works.
    const vm = await clientFrom(readBundle(join(work, "web1-2.bundle")));
    expect((await vm.env.getEnv({})).snapshot?.vars.length).toBeGreaterThan(0);
    vm.close();
  });

  test("--insecure and --force: a plaintext bundle on purpose, written over an old file", async () => {
    const f = join(work, "web1.bundle");
    ok(
      await admin(
        "vm",
        "token",
        "web1",
        "--bundle",
        f,
        "--force",
        "--keep",
        "--insecure",
        "--server-address",
        "192.168.122.1:3090",
      ),
    );
    const b = readBundle(f);
    expect(b).toMatchObject({ server: "192.168.122.1:3090", insecure: true });
    expect(b.ca).toBeUndefined();
    expect(mode(f)).toBe(0o600);
    // Loopback needs no CA and no --insecure.
    const g = join(work, "web4.bundle");
    const r = await admin(
      "vm",
      "add",
      "web4",
      "--bundle",
      g,
      "--server-address",
      `localhost:${port}`,
      "--tls-dir",
      join(work, "no-tls"),
    );
    ok(r);
    expect(r.stderr).toContain(", no CA (plaintext)");
    expect(readBundle(g)).toMatchObject({ server: `localhost:${port}` });
  });
});

describe("the walk-through without flags: tls init, secretsd, vm add --bundle", {
  timeout: 45_000,
}, () => {
  let home: string;
  let p: DaemonProcess;
  /** The CLI as an operator runs it: everything from $VM_AUTH_HOME (socket, TLS dir). */
  const host = (...args: string[]) => cli(args, { env: { VM_AUTH_HOME: home } });

  beforeAll(async () => {
    home = await mkdtemp(join(testRoot() ?? work, "cli-tls-home-"));
    ok(await host("tls", "init", "--san", "127.0.0.1"));
    // No --tls-cert/--tls-key: secretsd serves <data dir>/tls/server.pem + server.key.
    p = await spawnDaemon(home, ["--listen", "127.0.0.1:0"]);
  });
  afterAll(async () => {
    p?.child.kill("SIGTERM");
    await p?.exited;
  });

  test("a bundle made with no TLS flags at all reaches secretsd over TLS", async () => {
    const port = (p.tcp ?? "").split(":")[1] ?? "";
    // secretsd took a random port; the real one goes in guest.json (the CA is kept).
    ok(await host("tls", "init", "--san", "127.0.0.1", "--port", port, "--force"));
    const f = join(work, "web5.bundle");
    ok(await host("vm", "add", "web5", "--bundle", f));
    const b = decodeBundle(readFileSync(f, "utf8"));
    tokens.push(b.token);
    expect(b.server).toBe(`127.0.0.1:${port}`);
    expect(b.ca).toBe(readFileSync(join(home, "tls", "ca.pem"), "utf8"));
    const caFile = join(work, "web5-ca.pem");
    await writeFile(caFile, b.ca ?? "");
    const vm = createClient({ server: b.server, token: b.token, tls: caFile, deadlineMs: 3000 });
    expect((await vm.env.getEnv({})).snapshot).toBeDefined();
    vm.close();
    const plain = createClient({ server: b.server, token: b.token, deadlineMs: 1500 });
    await expect(plain.env.getEnv({})).rejects.toMatchObject({
      code: expect.stringMatching(/unavailable|deadline_exceeded/),
    });
    plain.close();
  });
});
