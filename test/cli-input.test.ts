/**
 * How secretsctl takes a secret value and asks before destroying (issue #12), built CLI
 * against a real secretsd:
 * - `--from-file PATH` / `@PATH` store a file byte for byte (a PEM's final newline kept);
 *   a directory, a missing, empty, non-UTF-8 or over-64-KiB file is refused in one line
 *   naming the flag, and nothing is stored.
 * - At the hidden prompt, on a real pseudo-terminal (util-linux `script`): a bracketed paste
 *   (ESC[200~ … ESC[201~) of several lines is stored whole; the same lines pasted by a
 *   terminal without bracketed paste are refused with a pointer to --from-file, not cut.
 * - Destructive commands ask `[y/N]` on a terminal: anything but y is exit 130 and changes
 *   nothing; `y` or `--yes` goes ahead; without a terminal (scripts) nothing is asked.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, SECRETSCTL, use, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-input-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

beforeAll(() => {
  ({ d, cli, work } = suite);
});

const getValue = async (name: string) => (await d.client.secrets.getSecretValue({ name })).value;
const exists = async (name: string) =>
  (await d.client.secrets.listSecrets({})).secrets.some((s) => s.name === name);

describe("--from-file and @PATH", () => {
  test("store the file byte for byte: add, rotate, @PATH", async () => {
    const pem = use(
      `-----BEGIN PRIVATE KEY-----\n${value()}\n${value()}\n-----END PRIVATE KEY-----\n`,
    );
    const file = join(work, "key.pem");
    await writeFile(file, pem);
    ok(await cli(["add", "pem1", "--from-file", file]));
    expect(await getValue("pem1")).toBe(pem);
    const json = use(`{\n  "type": "service_account",\n  "key": "${value()}"\n}\n\n`);
    const jfile = join(work, "sa.json");
    await writeFile(jfile, json);
    ok(await cli(["rotate", "pem1", "--from-file", jfile]));
    expect(await getValue("pem1")).toBe(json);
    ok(await cli(["add", "pem2", `@${file}`]));
    expect(await getValue("pem2")).toBe(pem);
    ok(await cli(["rotate", "pem2", `@${jfile}`]));
    expect(await getValue("pem2")).toBe(json);
  });

  test("stdin keeps its rule: exactly one trailing newline is stripped", async () => {
    const v = value();
    ok(await cli(["add", "stdin1"], { stdin: `${v}\n\n` }));
    expect(await getValue("stdin1")).toBe(`${v}\n`);
  });

  test("a directory, a missing, empty, non-UTF-8 or too large file: one line naming the flag, nothing stored", async () => {
    const dir = join(work, "a-dir");
    await mkdir(dir, { recursive: true });
    const empty = join(work, "empty.txt");
    await writeFile(empty, "");
    const latin1 = join(work, "latin1.txt");
    await writeFile(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const big = join(work, "big.txt");
    await writeFile(big, "x".repeat(64 * 1024 + 1));
    const cases: [string[], string][] = [
      [["--from-file", dir], `--from-file: ${dir} is a directory`],
      [["--from-file", join(work, "missing")], "--from-file: cannot read"],
      [["--from-file", empty], "is empty"],
      [["--from-file", latin1], "is not valid UTF-8"],
      [["--from-file", big], "the limit is 65536"],
      [[`@${dir}`], `@PATH: ${dir} is a directory`],
      [[`@${join(work, "missing")}`], "@PATH: cannot read"],
    ];
    for (const [args, mention] of cases) failed(await cli(["add", "bad1", ...args]), 1, mention);
    expect(await exists("bad1")).toBe(false);
    const before = await getValue("pem1");
    for (const [args, mention] of cases.slice(0, 2)) {
      failed(await cli(["rotate", "pem1", ...args]), 1, mention);
    }
    expect(await getValue("pem1")).toBe(before);
    failed(await cli(["add", "bad1", "v-123456", "--from-file", empty]), 2, "not both");
    expect(await exists("bad1")).toBe(false);
  });
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

describe.skipIf(!hasScript)("the hidden prompt on a terminal (util-linux script)", () => {
  test("a bracketed multi-line paste is stored whole", async () => {
    const lines = [value(), value(), value()];
    const r = await inPty(
      ["add", "paste1"],
      [["(input hidden): ", `\u001b[200~${lines.join("\r")}\r\u001b[201~\r`]],
    );
    expect(r.code, r.transcript).toBe(0);
    expect(r.transcript).toContain("\u001b[?2004h");
    for (const l of lines) expect(r.transcript).not.toContain(l);
    // Pasted line breaks are kept; the one ending the whole value is dropped, as for stdin.
    expect(await getValue("paste1")).toBe(lines.join("\n"));
  });

  test("a paste split across reads, CRLF breaks, and typing after it", async () => {
    const [a, b] = [value(), value()];
    const r = await inPty(
      ["add", "paste2"],
      [["(input hidden): ", `\u001b[20`, `0~${a}\r\n`, `${b}\u001b[2`, "01~", "-end\r"]],
    );
    expect(r.code, r.transcript).toBe(0);
    expect(await getValue("paste2")).toBe(`${a}\n${b}-end`);
  });

  test("typed, then Enter: one line as before", async () => {
    const v = value();
    const r = await inPty(["rotate", "paste1"], [["(input hidden): ", `${v}\r`]]);
    expect(r.code, r.transcript).toBe(0);
    expect(await getValue("paste1")).toBe(v);
  });

  test("several lines without bracketed paste are refused, not cut, and nothing is stored", async () => {
    const lines = [value(), value()];
    const r = await inPty(["add", "paste3"], [["(input hidden): ", `${lines.join("\r")}\r`]]);
    expect(r.code, r.transcript).toBe(1);
    expect(r.transcript).toContain(
      "secretsctl: value: a multi-line paste arrived as typed lines (this terminal has no bracketed paste); nothing was stored: give the value with --from-file PATH or on stdin",
    );
    for (const l of lines) expect(r.transcript).not.toContain(l);
    expect(await exists("paste3")).toBe(false);
  });
});

describe.skipIf(!hasScript)("destructive commands confirm on a terminal", () => {
  beforeAll(async () => {
    for (const n of ["c1", "c2", "c3", "c4"]) {
      await d.client.secrets.createSecret({ name: n, value: value() });
    }
    await d.client.secrets.rotateSecret({ name: "c4", value: value() });
    await d.client.access.createVm({ name: "cvm" });
  });

  test.each([
    ["n", "n\r"],
    ["Enter", "\r"],
    ["Ctrl-C", "\u0003"],
    ["Ctrl-D", "\u0004"],
    ["yes-ish", "yep\r"],
  ])("%s cancels: exit 130, nothing changed", async (_label, answer) => {
    const r = await inPty(["remove", "c1"], [["[y/N] ", answer]]);
    expect(r.code, r.transcript).toBe(130);
    expect(r.transcript).toContain("remove secret c1 and all its versions? [y/N] ");
    expect(r.transcript).toContain("secretsctl: cancelled; nothing changed");
    expect(await exists("c1")).toBe(true);
  });

  test("y goes ahead", async () => {
    const r = await inPty(["remove", "c1"], [["[y/N] ", "y\r"]]);
    expect(r.code, r.transcript).toBe(0);
    expect(r.transcript).toContain("removed c1");
    expect(await exists("c1")).toBe(false);
  });

  test("--yes and -y do not ask", async () => {
    for (const [name, flag] of [
      ["c2", "--yes"],
      ["c3", "-y"],
    ] as const) {
      const r = await inPty(["remove", name, flag], []);
      expect(r.code, r.transcript).toBe(0);
      expect(r.transcript).not.toContain("[y/N]");
      expect(await exists(name)).toBe(false);
    }
  });

  test("rollback, vm revoke and vm remove ask too", async () => {
    const no = await inPty(["rollback", "c4", "1"], [["[y/N] ", "n\r"]]);
    expect(no.code, no.transcript).toBe(130);
    expect((await d.client.secrets.getSecretValue({ name: "c4" })).version).toBe(2);
    const yes = await inPty(["rollback", "c4", "1"], [["[y/N] ", "yes\r"]]);
    expect(yes.code, yes.transcript).toBe(0);
    expect((await d.client.secrets.getSecretValue({ name: "c4" })).version).toBe(1);
    const revoke = await inPty(["vm", "revoke", "cvm"], [["[y/N] ", "\r"]]);
    expect(revoke.code, revoke.transcript).toBe(130);
    const rm = await inPty(["vm", "rm", "cvm"], [["[y/N] ", "n\r"]]);
    expect(rm.code, rm.transcript).toBe(130);
    expect((await d.client.access.listVms({})).vms.map((v) => v.name)).toContain("cvm");
  });

  test("import asks only when it would change existing secrets", async () => {
    await d.client.secrets.createSecret({ name: "ci_old", value: value() });
    const path = join(work, "confirm.env");
    const [fresh, created] = [value(), value()];
    await writeFile(path, `CI_OLD=${fresh}\nCI_NEW=${created}\n`);
    const no = await inPty(["import", path], [["[y/N] ", "n\r"]]);
    expect(no.code, no.transcript).toBe(130);
    expect(no.transcript).toContain("import changes 1 existing secret (line 1); continue? [y/N] ");
    expect(await exists("ci_new")).toBe(false);
    const onlyNew = join(work, "confirm-new.env");
    await writeFile(onlyNew, `CI_NEW=${created}\n`);
    const r = await inPty(["import", onlyNew], []);
    expect(r.code, r.transcript).toBe(0);
    expect(r.transcript).not.toContain("[y/N]");
  });

  test("without a terminal nothing is asked (scripts keep working)", async () => {
    await d.client.secrets.createSecret({ name: "c5", value: value() });
    const r = await cli(["remove", "c5"], { stdin: "" });
    expect(ok(r)).toBe("removed c5\n");
    expect(r.stderr).toBe("");
  });
});

// --- internal ---

/**
 * Runs the built secretsctl on a pseudo-terminal. `steps` are [prompt, ...writes]: once the
 * transcript shows the prompt (counting earlier ones), each write is sent as its own write,
 * a few ms apart, so a split paste arrives split.
 */
function inPty(
  args: string[],
  steps: [string, ...string[]][],
): Promise<{ code: number | null; transcript: string }> {
  const cmd = [process.execPath, SECRETSCTL, ...args].map(quote).join(" ");
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: work,
      VM_AUTH_HOME: d.dataDir,
      NO_COLOR: "1",
      TERM: "dumb",
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let transcript = "";
  let next = 0;
  const onOutput = (b: Buffer) => {
    transcript += b.toString("utf8");
    const step = steps[next];
    if (step && transcript.includes(step[0])) {
      next++;
      void (async () => {
        for (const w of step.slice(1)) {
          child.stdin.write(w);
          await new Promise((r) => setTimeout(r, 15));
        }
      })();
    }
  };
  child.stdout.on("data", onOutput);
  child.stderr.on("data", onOutput);
  const stuck = setTimeout(() => child.kill("SIGKILL"), 12_000);
  return new Promise((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(stuck);
      child.stdin.destroy();
      res({ code, transcript });
    });
  });
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}
