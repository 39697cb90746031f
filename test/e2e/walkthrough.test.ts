/**
 * The README's "From clone to a VM receiving a rotated key", run as written: its ```sh host
 * blocks in bash on this host (the repo as cwd), its ```sh vm block as root in a throw-away
 * systemd machine (nspawn) that reaches the host only over a private veth link (./helpers/netns.ts),
 * so the guest talks to secretsd on the host's link address with TLS, as a VM on a bridge would.
 *
 * Only these differ from a person at a terminal: 192.168.122.1 becomes the link's host address;
 * VM_AUTH_HOME is a temp dir (a fresh data dir); `npm ci && npm run build` is checked to be there
 * and skipped (the suite runs on a build); the backgrounded `npm start …&` is a child we wait for
 * (its "listening" line) and kill at the end; aliases defined in one line hold for the later ones
 * (a shell session); the values the README says are prompted for come from stdin; read-only
 * commands the README shows to watch progress (`status`, `vm list`) are re-run until they show it,
 * as a person would. The README's "copy to the VM" step is done by writing the two files into the
 * machine. Asserted: TLS on the wire (a plaintext attempt without the CA is refused and writes
 * nothing), app.service gets OPENAI_API_KEY, a rotation restarts it (new PID) with the new value
 * and leaves a unit that does not use the key alone, and `vm list` shows web1 not behind.
 * On failure it prints the machine's console, the shim's journal and secretsd's output (secret
 * values and the token redacted). Skips only when nspawn or ip is unavailable; fails under CI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { BUNDLE_PREFIX, decodeBundle } from "../../common/bundle.js";
import { secretValue, testRoot } from "../helpers/values.js";
import {
  createPrivateNetwork,
  netnsAvailable,
  type PrivateNetwork,
  removeStale,
} from "./helpers/netns.js";
import { bootContainer, type Container, nspawnAvailable } from "./helpers/nspawn.js";
import { requireBuilt, shimJournal, writeSleeper } from "./helpers/shim-guest.js";

const avail = [nspawnAvailable(), netnsAvailable()].find((a) => !a.ok) ?? { ok: true as const };
const inCI = Boolean(process.env.CI);
if (!avail.ok) {
  console.warn(`walkthrough e2e: ${inCI ? "FAILING (CI requires it)" : "skipped"}: ${avail.why}`);
}

const ROOT = resolve(import.meta.dirname, "../..");
const SECTION = "## From clone to a VM receiving a rotated key";
const README_HOST = "192.168.122.1";
/** Where the README's "copy … to the VM" puts shim.cjs and the bundle; the vm block's cwd. */
const GUEST_DIR = "/root";
const BUNDLE = join(ROOT, "web1.bundle");
const OTHER = "other.service";

/** One line run: where, what, and how it ended. */
interface Ran {
  where: "host" | "vm";
  cmd: string;
  code: number | null;
  out: string;
  err: string;
}

/** A fenced block of the section, its commands with `\`-continued lines joined. */
interface Block {
  where: "host" | "vm";
  commands: string[];
}

describe.skipIf(!avail.ok && !inCI)(
  "README walk-through, host → VM over a private link (nspawn)",
  () => {
    /** Under the suite's root, so its leak check reads the store, audit log and output. */
    let home = "";
    let dataDir = "";
    let usrLocal = "";
    const firstKey = secretValue("sk-walkthrough-1");
    const secondKey = secretValue("sk-walkthrough-2");
    /** The README's prompted values, fed on stdin to the one line that asks for each. */
    const prompts: [RegExp, string][] = [
      [/^secretsctl add openai\b/, `${firstKey}\n`],
      [/^secretsctl rotate openai\b/, `${secondKey}\n`],
    ];
    const fed = new Set<RegExp>();
    const aliases: string[] = [];
    let blocks: Block[] = [];
    let net: PrivateNetwork | undefined;
    let c: Container | undefined;
    let secretsd: ChildProcess | undefined;
    let secretsdOut = "";
    let token = "";
    const sub = (cmd: string) => cmd.replaceAll(README_HOST, net?.hostAddress ?? README_HOST);
    const redact = (s: string) =>
      [firstKey, secondKey, token]
        .filter(Boolean)
        .reduce((t, v) => t.replaceAll(v, "<redacted>"), s);

    const hostEnv = () => ({
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
      LANG: "C.UTF-8",
      VM_AUTH_HOME: dataDir,
    });
    /**
     * One host line in bash (aliases defined earlier still hold), the repo as cwd. `--norc`:
     * bash sources ~/.bashrc when its stdin is a socket (it takes that for sshd), and node's
     * stdio pipes are socketpairs; this host's rc (pyenv init) cost seconds per line.
     */
    const hostLine = (cmd: string, stdin: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((res, rej) => {
        const child = spawn(
          "bash",
          ["--norc", "-e", "-O", "expand_aliases", "-c", [...aliases, cmd].join("\n")],
          {
            cwd: ROOT,
            env: hostEnv(),
            stdio: ["pipe", "pipe", "pipe"],
          },
        );
        let out = "";
        let err = "";
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
        });
        child.stderr.on("data", (b: Buffer) => {
          err += b.toString();
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.on("error", rej);
        child.on("close", (code) => {
          clearTimeout(timer);
          res({ code, out, err });
        });
        child.stdin.end(stdin);
      });
    /** The backgrounded `npm start … &`, run as written (then `wait`), until it is listening. */
    const startBackground = (cmd: string) =>
      new Promise<{ socket: string | null; tcp: string | null }>((res, rej) => {
        const child = spawn(
          "bash",
          ["--norc", "-e", "-O", "expand_aliases", "-c", [...aliases, cmd, "wait"].join("\n")],
          {
            cwd: ROOT,
            env: hostEnv(),
            stdio: ["ignore", "pipe", "pipe"],
            detached: true, // its own process group: bash, npm and secretsd are killed together
          },
        );
        secretsd = child;
        const t0 = Date.now();
        const timer = setTimeout(
          () => rej(new Error(`no "listening" line after 90 s: ${cmd}`)),
          90_000,
        );
        let listening = false;
        const onData = (b: Buffer) => {
          secretsdOut += b.toString();
          if (listening) return;
          const line = secretsdOut.split("\n").find((l) => l.includes('"listening"'));
          if (line) {
            listening = true;
            clearTimeout(timer);
            console.info(`walkthrough e2e: host ${Date.now() - t0} ms to "listening": ${cmd}`);
            res(JSON.parse(line) as { socket: string | null; tcp: string | null });
          }
        };
        child.stdout?.on("data", onData);
        child.stderr?.on("data", onData);
        child.on("exit", (code, signal) => {
          clearTimeout(timer);
          rej(new Error(`${cmd}: exited (${code ?? signal}) before listening`));
        });
      });
    const stopBackground = async () => {
      const child = secretsd;
      if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-(child.pid ?? 0), "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    };
    const killOnExit = () => {
      if (secretsd?.pid && secretsd.exitCode === null) process.kill(-secretsd.pid, "SIGKILL");
    };

    /** Runs a host line as written (prompts from stdin); logs how long it took. */
    const tryHost = async (cmd: string): Promise<Ran> => {
      if (/^alias\s/.test(cmd)) aliases.push(cmd);
      const prompt = prompts.find(([re]) => re.test(cmd));
      if (prompt) fed.add(prompt[0]);
      const t0 = Date.now();
      const r = await hostLine(sub(cmd), prompt?.[1] ?? "");
      console.info(`walkthrough e2e: host ${Date.now() - t0} ms: ${cmd}`);
      return { where: "host", cmd, ...r };
    };
    /** Runs a vm line as written, as root in {@link GUEST_DIR}; logs how long it took. */
    const tryVm = async (cmd: string): Promise<Ran> => {
      const t0 = Date.now();
      const r = await (c as Container).exec(
        ["sh", "-c", 'cd -- "$1" && exec bash -e -c "$2"', "sh", GUEST_DIR, sub(cmd)],
        { allowFail: true, timeoutMs: 60_000 },
      );
      console.info(`walkthrough e2e: vm ${Date.now() - t0} ms: ${cmd}`);
      return { where: "vm", cmd, code: r.code, out: r.stdout, err: r.stderr };
    };
    /** The line's output; throws with its exit code and output (redacted) unless it exited 0. */
    const ok = (r: Ran) => {
      if (r.code !== 0) {
        throw new Error(`${r.where}: ${r.cmd}
exit ${r.code}
${redact(r.err)}${redact(r.out)}`);
      }
      return r.out;
    };
    const runHost = async (cmd: string) => ok(await tryHost(cmd));
    const runVm = async (cmd: string) => ok(await tryVm(cmd));
    /**
     * Re-runs a read-only line until it exits 0 with output that passes `shows` (a person
     * watching it settle); returns that output.
     */
    const watch = async (
      run: () => Promise<Ran>,
      shows: (out: string) => boolean,
      what: string,
    ) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await run();
        if (r.code === 0 && shows(r.out)) return r.out;
        if (Date.now() > deadline) {
          throw new Error(
            `${what}: not shown after 30 s; last run:\n${redact(r.err)}${redact(r.out)}`,
          );
        }
        await new Promise((res) => setTimeout(res, 250));
      }
    };
    const appEnv = async () =>
      (await (c as Container).unitEnv("app.service")).get("OPENAI_API_KEY");
    const until = async (cond: () => Promise<boolean>, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!(await cond().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`${what}: not after 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    /** On failure: the machine's console, the shim's journal and secretsd's output, redacted. */
    const diagnose = () =>
      onTestFailed(async () => {
        const journal = c
          ? await shimJournal(c).catch((e: Error) => [`(journal: ${e.message})`])
          : [];
        console.error(
          redact(
            [
              `--- machine ${c?.name ?? "(not booted)"} console (tail) ---`,
              (c?.log() ?? "").slice(-4000),
              "--- vm-auth-shim.service journal (tail) ---",
              journal.slice(-60).join("\n"),
              "--- secretsd (npm start) output (tail) ---",
              secretsdOut.slice(-4000),
            ].join("\n"),
          ),
        );
      });

    beforeAll(async () => {
      if (!avail.ok) throw new Error(`CI requires the nspawn e2e suite: ${avail.why}`);
      requireBuilt();
      home = mkdtempSync(join(testRoot() ?? tmpdir(), "walkthrough-"));
      dataDir = join(home, "data");
      usrLocal = mkdtempSync(join(tmpdir(), "vm-auth-walkthrough-usr-local-"));
      blocks = walkthrough(readFileSync(join(ROOT, "README.md"), "utf8"));
      // A bundle a crashed run left in the repo goes; anything else there is someone's file.
      if (existsSync(BUNDLE)) {
        if (!readFileSync(BUNDLE, "utf8").startsWith(BUNDLE_PREFIX)) {
          throw new Error(`${BUNDLE} exists and is not a bundle: move it away first`);
        }
        rmSync(BUNDLE);
      }
      process.once("exit", killOnExit);
      net = await createPrivateNetwork();
      c = await bootContainer({
        networkNamespace: net.path,
        // /usr is the host's, read-only: install needs a /usr/local of its own.
        binds: [`${usrLocal}:/usr/local`],
        timeoutMs: 30_000,
      });
      console.info(
        `walkthrough e2e: machine ${c.name} booted in ${c.bootMs} ms on ${net.guestAddress}`,
      );
      // app.service: "the service that should get OPENAI_API_KEY, any unit already on the VM";
      // other.service reads no key. Both run before the shim is installed, as they would.
      await writeSleeper(c, "app");
      await writeSleeper(c, "other");
      await c.systemctl("daemon-reload");
      await c.systemctl("start", "app.service", OTHER);
    }, 60_000);

    afterAll(async () => {
      await stopBackground().catch(() => {});
      process.removeListener("exit", killOnExit);
      await c?.stop();
      await net?.remove();
      if (home) writeFileSync(join(home, "secretsd.out"), secretsdOut); // for the leak check
      // None was there at the start (beforeAll), so a bundle there now is this run's.
      if (existsSync(BUNDLE) && readFileSync(BUNDLE, "utf8").startsWith(BUNDLE_PREFIX)) {
        rmSync(BUNDLE);
      }
      if (usrLocal) rmSync(usrLocal, { recursive: true, force: true });
    }, 30_000);

    it("the section has host blocks, then one vm block, then host blocks; it builds first", () => {
      const where = blocks.map((b) => b.where).join(" ");
      expect(where).toMatch(/^(host )+vm( host)+$/);
      expect(blocks[0]?.commands[0]).toBe("npm ci && npm run build");
      expect(blocks.flatMap((b) => b.commands).filter((l) => /&\s*(#.*)?$/.test(l))).toHaveLength(
        1,
      );
      const text = section(readFileSync(join(ROOT, "README.md"), "utf8"));
      expect(text).toContain("Copy `dist/shim.cjs` and `web1.bundle` to the VM");
      expect(text).toMatch(/needs Node 18 or newer/);
    });

    it("the machine reaches the host's link address, not the host's 127.0.0.1", async () => {
      diagnose();
      const n = net as PrivateNetwork;
      const onLink = await listen(n.hostAddress);
      const onLoopback = await listen("127.0.0.1");
      try {
        expect(await connectFromGuest(c as Container, n.hostAddress, port(onLink))).toBe("hello");
        expect(await connectFromGuest(c as Container, "127.0.0.1", port(onLoopback))).toBe(
          "ECONNREFUSED",
        );
      } finally {
        onLink.close();
        onLoopback.close();
      }
    }, 20_000);

    it("namespaces and links of a dead run are removed, a live run's are not", async () => {
      const dead = spawn("true");
      await new Promise((r) => dead.once("exit", r));
      const n = net as PrivateNetwork;
      const stale = `vmauth-e2e-${dead.pid}-deadbeef`;
      // A namespace, and a host link whose namespace is gone (pinned elsewhere, say), both
      // left by a run that no longer exists.
      await sh(`ip netns add ${stale}`);
      await sh("ip link add vmatdeadbeefh type veth peer name vmatdeadbeefg");
      await sh(`ip link set dev vmatdeadbeefh alias ${stale}`);
      try {
        const gone = await removeStale();
        expect(gone.sort()).toEqual([stale, "vmatdeadbeefh"].sort());
        expect(await sh("ip netns list")).not.toContain(stale);
        expect(await sh("ip -br link")).not.toContain("vmatdeadbeef");
        expect(await sh("ip netns list")).toContain(n.name);
        expect(await sh("ip -br link")).toContain(n.hostLink);
      } finally {
        await sh(
          `ip netns delete ${stale} 2>/dev/null; ip link delete vmatdeadbeefh 2>/dev/null; true`,
        );
      }
    }, 20_000);

    it("host: tls init, secretsd on the host's address with TLS, a secret, web1's bundle", async () => {
      diagnose();
      const n = net as PrivateNetwork;
      const vmAt = blocks.findIndex((b) => b.where === "vm");
      for (const b of blocks.slice(0, vmAt)) {
        for (const cmd of b.commands) {
          if (cmd === "npm ci && npm run build") continue; // built already (requireBuilt)
          if (/&\s*(#.*)?$/.test(cmd)) {
            const at = await startBackground(sub(cmd));
            expect(at.tcp).toBe(`${n.hostAddress}:3090`);
            continue;
          }
          await runHost(cmd);
        }
      }
      for (const f of ["ca.pem", "server.pem", "server.key"]) {
        expect(statSync(join(dataDir, "tls", f)).isFile()).toBe(true);
      }
      const st = statSync(BUNDLE);
      expect(st.mode & 0o777).toBe(0o600);
      const text = readFileSync(BUNDLE, "utf8");
      expect(text.trim().split("\n")).toHaveLength(1);
      const bundle = decodeBundle(text);
      token = bundle.token;
      expect(bundle.server).toBe(`${n.hostAddress}:3090`);
      expect(bundle.ca).toMatch(/BEGIN CERTIFICATE/);
      // The README's copy step: shim.cjs and the bundle into the VM.
      const m = c as Container;
      await m.writeFile(`${GUEST_DIR}/shim.cjs`, readFileSync(join(ROOT, "dist/shim.cjs")));
      await m.writeFile(`${GUEST_DIR}/web1.bundle`, text, 0o600);
    }, 120_000);

    it("vm: plaintext to the host's address without the CA is refused and writes nothing", async () => {
      diagnose();
      const m = c as Container;
      const n = net as PrivateNetwork;
      await m.writeFile("/root/plain/token", `${token}\n`, 0o600);
      const before = await guestFiles(m);
      const r = await m.exec(
        [
          "node",
          `${GUEST_DIR}/shim.cjs`,
          "install",
          ...["--server", `${n.hostAddress}:3090`, "--token-file", "/root/plain/token"],
          ...["--unit", "app.service:OPENAI_API_KEY", "--enable", "--now"],
        ],
        { allowFail: true },
      );
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      // The message the README quotes, naming the field.
      expect(lines[0]).toContain(
        `server: ${n.hostAddress}:3090 is not a loopback address; give --ca FILE or --tls for TLS, or --insecure to send the token in plaintext`,
      );
      expect(r.stderr + r.stdout).not.toContain(token);
      expect(await guestFiles(m)).toEqual(before);
      await m.exec(["rm", "-r", "/root/plain"]);
    }, 30_000);

    it("vm: install --bundle as written; connected over TLS; app.service has the key", async () => {
      diagnose();
      const m = c as Container;
      const n = net as PrivateNetwork;
      const appPid = await m.mainPid("app.service");
      const otherPid = await m.mainPid(OTHER);
      const vm = blocks.find((b) => b.where === "vm") as Block;
      for (const cmd of vm.commands) {
        if (/shim\.cjs status\b/.test(cmd)) {
          const out = await watch(
            () => tryVm(cmd),
            (o) =>
              /^connection:\s+connected\b/m.test(o) && /^env vars:.*\bOPENAI_API_KEY\b/m.test(o),
            "shim status: connected, OPENAI_API_KEY applied",
          );
          // e.g. `server:           10.231.7.1:3090 (TLS, CA /etc/vm-auth/ca.pem)`
          const server = /^server:\s+(\S+) \((TLS)\b/m.exec(out);
          expect(server?.slice(1)).toEqual([`${n.hostAddress}:3090`, "TLS"]);
          continue;
        }
        await runVm(cmd);
      }
      // The first delivery restarted the running app.service with the key (README).
      await until(async () => (await appEnv()) === firstKey, "app.service has OPENAI_API_KEY");
      expect(await m.mainPid("app.service")).not.toBe(appPid);
      expect(await m.mainPid(OTHER)).toBe(otherPid);
      expect((await m.systemctl("is-active", "vm-auth-shim.service")).trim()).toBe("active");
      expect((await m.systemctl("is-enabled", "vm-auth-shim.service")).trim()).toBe("enabled");
      // What the README says install wrote: the bundle's token and CA, app.service's drop-in.
      const kept = await m.exec([
        "stat",
        "-c",
        "%a %U %n",
        "/etc/vm-auth/token",
        "/etc/vm-auth/ca.pem",
      ]);
      expect(kept.stdout.trim().split("\n")).toEqual([
        "600 root /etc/vm-auth/token",
        expect.stringMatching(/^6[0-4][0-4] root \/etc\/vm-auth\/ca\.pem$/),
      ]);
      expect(await m.systemctl("cat", "app.service")).toContain(
        "EnvironmentFile=-/run/vm-auth/env",
      );
      // The README's `rm web1.bundle` ran; install kept what it needs elsewhere.
      expect(
        (await m.exec(["test", "-e", `${GUEST_DIR}/web1.bundle`], { allowFail: true })).code,
      ).toBe(1);
    }, 60_000);

    it("host: rotate as written restarts app.service with the new value; vm list: not behind", async () => {
      diagnose();
      const m = c as Container;
      const appPid = await m.mainPid("app.service");
      const otherPid = await m.mainPid(OTHER);
      const vmAt = blocks.findIndex((b) => b.where === "vm");
      let listed = false;
      for (const b of blocks.slice(vmAt + 1)) {
        for (const cmd of b.commands) {
          if (/^secretsctl vm list\b/.test(cmd)) {
            const out = await watch(
              () => tryHost(cmd),
              (o) => web1Row(o)?.BEHIND === "no",
              "vm list: web1 not behind",
            );
            expect(web1Row(out)).toMatchObject({ CONNECTED: "yes", COMPLETE: "yes" });
            expect(web1Row(out)?.APPLIED).toMatch(/^[1-9][0-9]*$/);
            listed = true;
            continue;
          }
          await runHost(cmd);
          if (/^secretsctl rotate openai\b/.test(cmd)) {
            // From the command's return (its commit happened before): the shim's debounce
            // (500 ms by default), the env files, the restart.
            const t0 = Date.now();
            await until(
              async () => (await appEnv()) === secondKey,
              "app.service has the new value",
            );
            console.info(
              `walkthrough e2e: rotate returned → app.service running with the new value in ${Date.now() - t0} ms`,
            );
          }
        }
      }
      expect(listed).toBe(true);
      expect(await appEnv()).toBe(secondKey);
      expect(await m.mainPid("app.service")).not.toBe(appPid);
      expect(await m.mainPid(OTHER)).toBe(otherPid);
      // Every prompt the README announces was a line of it, and got its value.
      expect(prompts.filter(([re]) => !fed.has(re)).map(([re]) => re.source)).toEqual([]);
    }, 60_000);
  },
);

// --- internal ---

/** The section's text, up to the next `## ` heading. */
function section(md: string): string {
  const start = md.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const end = md.indexOf("\n## ", start + SECTION.length + 2);
  return md.slice(start, end < 0 ? undefined : end);
}

/** The section's ```sh host / ```sh vm blocks, in order; comment-only and blank lines dropped. */
function walkthrough(md: string): Block[] {
  const out: Block[] = [];
  for (const m of section(md).matchAll(/^```sh (host|vm)\n([\s\S]*?)^```$/gm)) {
    const commands: string[] = [];
    let pending = "";
    for (const line of (m[2] ?? "").split("\n")) {
      if (line.endsWith("\\")) {
        pending += `${line.slice(0, -1)} `;
        continue;
      }
      const cmd = (pending + line).trim();
      pending = "";
      if (cmd !== "" && !cmd.startsWith("#")) commands.push(cmd);
    }
    out.push({ where: m[1] as "host" | "vm", commands });
  }
  return out;
}

/** web1's row of `secretsctl vm list`, by the header's column offsets. */
function web1Row(out: string): Record<string, string> | undefined {
  const [header, ...rows] = out.split("\n");
  const row = rows.find((r) => r.startsWith("web1 "));
  if (!header || !row) return undefined;
  const cols = [...header.matchAll(/\S+/g)].map((h) => ({ name: h[0], at: h.index }));
  return Object.fromEntries(
    cols.map((col, i) => [col.name, row.slice(col.at, cols[i + 1]?.at ?? undefined).trim()]),
  );
}

/** Paths, modes and hashes of what install would write, to prove a refused one wrote nothing. */
async function guestFiles(m: Container): Promise<string> {
  const r = await m.exec([
    "sh",
    "-c",
    "find /etc/vm-auth /etc/systemd/system /usr/local/lib/vm-auth /var/lib/vm-auth /run/vm-auth " +
      "-xdev -printf '%p %m\\n' 2>/dev/null | sort; " +
      "find /etc/vm-auth /etc/systemd/system /var/lib/vm-auth -xdev -type f -exec sha256sum {} + 2>/dev/null | sort; true",
  ]);
  return r.stdout;
}

function listen(host: string): Promise<Server> {
  return new Promise((res, rej) => {
    const s = createServer((sock) => sock.end("hello"));
    s.once("error", rej);
    s.listen(0, host, () => res(s));
  });
}

function port(s: Server): number {
  const a = s.address();
  if (!a || typeof a === "string") throw new Error("server has no port");
  return a.port;
}

/** From inside the machine: what a TCP connect reads ("hello"), or its error code. */
async function connectFromGuest(m: Container, host: string, p: number): Promise<string> {
  const js =
    'const s=require("net").connect(+process.argv[2],process.argv[1]);let d="";' +
    's.setTimeout(5000,()=>{console.log("TIMEOUT");process.exit()});' +
    's.on("data",(b)=>{d+=b});s.on("end",()=>{console.log(d);process.exit()});' +
    's.on("error",(e)=>{console.log(e.code);process.exit()})';
  return (await m.exec(["node", "-e", js, host, String(p)])).stdout.trim();
}

async function sh(cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("close", (code) =>
      code === 0 ? res(out) : rej(new Error(`${cmd}: exit ${code}\n${err}`)),
    );
  });
}
