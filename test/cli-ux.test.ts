/**
 * secretsctl's ergonomics, with the built CLI against a real secretsd: the completion scripts
 * run in real bash (and zsh and fish when installed; .ci/run installs them) with names from
 * the daemon; "did you mean" for commands and options; examples for every command, checked
 * against the live command tree; `version`; JSON errors under --json; and the exit-code table.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { EXAMPLES } from "../client/cli/examples.js";
import pkg from "../package.json" with { type: "json" };
import type { CliResult, CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, runCli, SECRETSCTL, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-ux-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

/** A command as `secretsctl __complete commands` prints the live tree. */
interface Node {
  path: string[];
  hidden: boolean;
  subcommands: { name: string; aliases: string[] }[];
  flags: { name: string; type: string; aliases: string[]; options: string[] }[];
  positionals: { name: string; required: boolean }[];
}
let tree: Node[];
/** The values of export's --format enum, as the tree has them (other changes add formats). */
let formats: string[];

beforeAll(async () => {
  ({ d, cli, work } = suite);
  tree = ok(await runCli(["__complete", "commands"]))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Node);
  const format = tree
    .find((c) => c.path.join(" ") === "export")
    ?.flags.find((f) => f.name === "format");
  formats = [...(format?.options ?? [])].sort();
  expect(formats).toContain("dotenv");
  ok(await cli(["add", "openai", value()]));
  ok(await cli(["add", "anthropic", value()]));
  ok(await cli(["group", "add", "prod"]));
  ok(await cli(["vm", "add", "web1", "--group", "prod"]));
  ok(await cli(["vm", "add", "web2"]));
});

/** Runs a shell program; resolves with its output (never rejects on exit codes). */
function sh(shell: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const child = spawn(shell, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));
  return new Promise((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) =>
      res({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
      }),
    );
  });
}

async function has(program: string): Promise<boolean> {
  return (await sh("sh", ["-c", `command -v ${program}`])).code === 0;
}

/** The script `secretsctl completion SHELL` prints, written to the scratch dir. */
async function script(shell: string): Promise<string> {
  const file = join(work, `completion.${shell}`);
  writeFileSync(file, ok(await cli(["completion", shell])));
  return file;
}

/** A `secretsctl` shell function running the built CLI, as an installed one would. */
const SHIM_FN = `secretsctl() { node ${SECRETSCTL} "$@"; }`;

describe("completion", () => {
  let bash: string;
  /** Completes each line (a trailing space means a new word) in one bash; one result each. */
  let complete: (lines: string[], env?: Record<string, string>) => Promise<string[][]>;

  beforeAll(async () => {
    bash = await script("bash");
    complete = async (lines, env = { VM_AUTH_HOME: d.dataDir }) => {
      // COMP_WORDS as readline splits them (COMP_WORDBREAKS: spaces and ':').
      const calls = lines.map(
        (l) => `t ${JSON.stringify(l)}`, // JSON string quoting is valid bash double quoting here
      );
      const prog = [SHIM_FN, `source ${bash}`, BASH_HARNESS, ...calls].join("\n");
      const r = await sh("bash", ["-c", prog], env);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return r.stdout
        .split("\n")
        .slice(0, lines.length)
        .map((l) => (l === "" ? [] : l.split(" ").sort()));
    };
  });

  test("bash: commands, subcommands, options and enum values from the command tree", async () => {
    const got = await complete([
      "secretsctl ro",
      "secretsctl vm a",
      "secretsctl rotate --p",
      "secretsctl rotate openai --pl",
      "secretsctl export web1 --format ",
      "secretsctl completion ",
      "secretsctl --json vm li",
      "secretsctl vm ls --js",
      "secretsctl run --vm web1 -- ",
    ]);
    expect(got).toEqual([
      ["rollback", "rotate"],
      ["add"],
      ["--plan"],
      ["--plan"],
      formats,
      ["bash", "fish", "zsh"],
      ["list"],
      ["--json"],
      // After `--` the words are the command's own: bash's default (files) takes over.
      [],
    ]);
  });

  // Each name lookup starts the CLI once: allow for a loaded machine.
  test("bash: secret, VM and group names come from secretsd", { timeout: 90_000 }, async () => {
    const got = await complete([
      "secretsctl get ",
      "secretsctl rotate o",
      "secretsctl vm token w",
      "secretsctl export ",
      "secretsctl vm groups web1 --add ",
      "secretsctl add x --scope vm:",
      "secretsctl add x --scope g",
      "secretsctl list --scope group:p",
      // A positional after the name: no names there.
      "secretsctl rotate openai ",
    ]);
    expect(got).toEqual([
      ["anthropic", "openai"],
      ["openai"],
      ["web1", "web2"],
      ["web1", "web2"],
      ["prod"],
      // readline replaces the part after the last ':'.
      ["web1", "web2"],
      ["global", "group:prod"],
      ["prod"],
      [],
    ]);
  });

  test("bash: the connection options on the line reach the name lookup", {
    timeout: 60_000,
  }, async () => {
    const home = join(work, "no-daemon-home");
    const got = await complete(["secretsctl get ", `secretsctl --socket ${d.socket} get `], {
      VM_AUTH_HOME: home,
    });
    expect(got).toEqual([[], ["anthropic", "openai"]]);
  });

  test("bash: secretsd unreachable completes no names, prints nothing, and is quick", {
    timeout: 60_000,
  }, async () => {
    const started = Date.now();
    const got = await complete(["secretsctl get ", "secretsctl vm remove "], {
      VM_AUTH_SOCKET: join(work, "nothing-here.sock"),
    });
    expect(got).toEqual([[], []]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("zsh: the script parses, and its completion function answers", {
    timeout: 60_000,
  }, async (ctx) => {
    if (!(await has("zsh"))) {
      ctx.skip(); // zsh is not installed here (.ci/run installs it): nothing to run the script in
      return;
    }
    const file = await script("zsh");
    expect((await sh("zsh", ["-n", file])).code).toBe(0);
    const prog = [
      SHIM_FN,
      "compdef() { : }",
      `source ${file}`,
      ZSH_HARNESS,
      't "secretsctl vm a"',
      't "secretsctl export web1 --format "',
      't "secretsctl get "',
      't "secretsctl add x --scope "',
      't "secretsctl import "',
    ].join("\n");
    const r = await sh("zsh", ["-c", prog], { VM_AUTH_HOME: d.dataDir });
    expect(r.stderr).toBe("");
    const lines = r.stdout.split("\n");
    expect(lines[0]).toContain("add:register a VM");
    expect(lines[0]).toContain("groups:add a VM to groups");
    expect(lines[1]).toBe(`${formats.join(" ")} `);
    expect(lines[2]).toBe("anthropic openai ");
    expect(lines[3]).toBe("global group:prod host vm:web1 vm:web2 ");
    expect(lines[4]).toBe("<files> ");
  });

  test("fish: the script parses, and complete -C answers", { timeout: 60_000 }, async (ctx) => {
    if (!(await has("fish"))) {
      ctx.skip(); // fish is not installed here (.ci/run installs it): nothing to run the script in
      return;
    }
    const file = await script("fish");
    expect((await sh("fish", ["-n", file])).code).toBe(0);
    const queries = [
      "secretsctl ro",
      "secretsctl vm a",
      "secretsctl rotate openai --p",
      "secretsctl get ",
      "secretsctl export web1 --format ",
      "secretsctl vm groups web1 --add ",
    ];
    const prog = [
      `function secretsctl; node ${SECRETSCTL} $argv; end`,
      `source ${file}`,
      ...queries.map(
        (q) => `complete -C${JSON.stringify(q)} | string replace -r '\\t.*' '' | string join ' '`,
      ),
    ].join("\n");
    const r = await sh("fish", ["-c", prog], { VM_AUTH_HOME: d.dataDir });
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n").slice(0, queries.length)).toEqual([
      "rollback rotate",
      "add",
      "--plan",
      "anthropic openai",
      formats.join(" "),
      "prod",
    ]);
  });

  test("an unknown shell is a usage error", async () => {
    failed(await cli(["completion", "tcsh"]), 2, "SHELL must be one of bash, zsh, fish");
  });
});

describe("did you mean", () => {
  test("a mistyped command names the closest one, exit 2", async () => {
    failed(await cli(["rotat"]), 2, /^secretsctl: unknown command rotat \(did you mean rotate\?\)/);
    failed(
      await cli(["vm", "ad", "web3"]),
      2,
      "unknown command ad for 'secretsctl vm' (did you mean add?)",
    );
    failed(await cli(["manifest", "aply"]), 2, "(did you mean apply?)");
    failed(await cli(["frobnicate"]), 2, /^secretsctl: unknown command frobnicate \(see/);
  });

  test("a mistyped option names the closest one, exit 2, and changes nothing", async () => {
    const before = ok(await cli(["list", "--json"]));
    failed(
      await cli(["rotate", "openai", "--plna"]),
      2,
      "unknown option --plna (did you mean --plan?)",
    );
    failed(
      await cli(["add", "x", "--scpoe", "vm:web1", value()]),
      2,
      "unknown option --scpoe (did you mean --scope?)",
    );
    failed(await cli(["vm", "list", "--jsno"]), 2, "(did you mean --json?)");
    expect(ok(await cli(["list", "--json"]))).toBe(before);
  });

  test("an option before the command's name: global ones apply, any other is an error", async () => {
    const viaGroup = JSON.parse(ok(await cli(["vm", "--json", "list"]))) as { vms: unknown[] };
    expect(viaGroup.vms).toHaveLength(2);
    const viaRoot = JSON.parse(ok(await cli(["--json", "vm", "list"]))) as { vms: unknown[] };
    expect(viaRoot.vms).toHaveLength(2);
    ok(await runCli(["--socket", d.socket, "vm", "list"]));
    failed(await cli(["--jsn", "list"]), 2, "unknown option --jsn (did you mean --json?)");
    failed(await cli(["vm", "--plan", "list"]), 2, "unknown option --plan");
  });

  test("a group command without a command lists its commands", async () => {
    failed(await cli(["vm"]), 2, "secretsctl vm needs a command: add, list, remove, token");
  });

  test("a word that may be a value is not repeated", async () => {
    const v = value("sk-typo");
    const msg = failed(await cli([v]), 2, "unknown command");
    expect(msg).not.toContain(v);
    const msg2 = failed(await cli(["vm", `-${v}`, "list"]), 2, "unknown option");
    expect(msg2).not.toContain(v);
  });

  test("run passes everything after -- through, unknown options included", async () => {
    const r = await cli(["run", "--vm", "web1", "--", "sh", "-c", "echo $0 $1", "--plna", "-x"]);
    expect(ok(r)).toBe("--plna -x\n");
  });
});

describe("examples", () => {
  test("every runnable command has examples, and no example names a missing command", () => {
    const runnable = tree.filter((c) => c.subcommands.length === 0 && !c.hidden);
    expect(runnable.length).toBeGreaterThan(40);
    const missing = runnable.map((c) => c.path.join(" ")).filter((p) => !EXAMPLES[p]?.length);
    expect(missing).toEqual([]);
    const known = new Set(tree.map((c) => c.path.join(" ")));
    const stale = Object.keys(EXAMPLES).filter((p) => !known.has(p));
    expect(stale).toEqual([]);
  });

  test("each example is a command line its command accepts", () => {
    const byPath = new Map(tree.map((c) => [c.path.join(" "), c]));
    const global = new Set([
      "json",
      "socket",
      "server",
      "token",
      "token-file",
      "ca",
      "tls",
      "timeout",
    ]);
    for (const [key, lines] of Object.entries(EXAMPLES)) {
      if (!byPath.has(key)) continue;
      for (const example of lines) {
        const words = commandWords(example);
        let node = byPath.get("") as Node;
        const path: string[] = [];
        let positionals = 0;
        for (let i = 0; i < words.length; i++) {
          const w = words[i] as string;
          if (w === "--") break;
          if (w.startsWith("-")) {
            const name = w.replace(/^--?/, "").split("=")[0] as string;
            const leaf = node.subcommands.length === 0;
            const flag = leaf
              ? node.flags.find((f) => f.name === name || f.aliases.includes(name))
              : undefined;
            const isGlobal = global.has(name) || (w === "--version" && path.length === 0);
            expect(
              flag ?? isGlobal,
              `${example}: ${w} is not an option of '${path.join(" ")}'`,
            ).toBeTruthy();
            const takesValue = flag
              ? flag.type !== "boolean"
              : !["json", "tls", "version"].includes(name);
            if (takesValue && !w.includes("=")) i++;
            continue;
          }
          const sub = node.subcommands.find((s) => s.name === w || s.aliases.includes(w));
          if (node.subcommands.length > 0) {
            expect(sub, `${example}: no command '${w}' under '${path.join(" ")}'`).toBeDefined();
            path.push(sub?.name ?? w);
            node = byPath.get(path.join(" ")) as Node;
            continue;
          }
          positionals++;
        }
        // The top-level examples may run anything; `secretsctl --version` is version's twin.
        const named = words.length === 1 && words[0] === "--version" ? ["version"] : path;
        if (key !== "") expect(named.slice(0, key.split(" ").length).join(" "), example).toBe(key);
        if (node.subcommands.length === 0) {
          const required = node.positionals.filter((p) => p.required).length;
          expect(positionals, `${example}: positionals`).toBeGreaterThanOrEqual(required);
          expect(positionals, `${example}: positionals`).toBeLessThanOrEqual(
            node.positionals.length,
          );
        }
      }
    }
  });

  test("help shows them under EXAMPLES; the top-level help shows the exit codes", async () => {
    const rotate = ok(await cli(["rotate", "--help"]));
    expect(rotate).toMatch(/\nEXAMPLES\n\n {2}secretsctl rotate openai +# /);
    expect(rotate).toContain("\n  secretsctl rotate openai --plan ");
    const vmAdd = ok(await cli(["vm", "add", "--help"]));
    expect(vmAdd).toContain("  secretsctl vm add web1 --group prod --group gpu\n");
    const completion = ok(await cli(["completion", "--help"]));
    expect(completion).toContain("secretsctl completion bash > /etc/bash_completion.d/secretsctl");
    const top = ok(await cli(["--help"]));
    expect(top).toContain("\nEXAMPLES\n");
    expect(top).toContain(
      "\nGLOBAL OPTIONS\n\n  --socket, --server, --token, --token-file, --ca, --tls,",
    );
    const status = top.slice(top.indexOf("\nEXIT STATUS\n"));
    for (const code of [0, 1, 2, 3, 4, 5, 130])
      expect(status).toMatch(new RegExp(`\\n +${code}  \\S`));
    expect(top).not.toContain("__complete");
  });
});

describe("version", () => {
  test("the client's and the server's version, as text and JSON", async () => {
    const text = ok(await cli(["version"]));
    expect(text).toBe(
      `client  ${pkg.version} (node ${process.version})\nserver  ${pkg.version} (${d.socket})\n`,
    );
    const json = JSON.parse(ok(await cli(["version", "--json"])));
    expect(json).toEqual({
      client: { version: pkg.version, node: process.version },
      server: { version: pkg.version, target: d.socket },
    });
    expect(ok(await cli(["--version"]))).toBe(`${pkg.version}\n`);
  });

  test("secretsd unreachable: the client's version, server null, a note, exit 0", async () => {
    const sock = join(work, "absent.sock");
    const r = await runCli(["version", "--json", "--socket", sock]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).server).toBeNull();
    expect(r.stderr).toMatch(
      /^secretsctl: server version unknown: cannot reach secretsd at .*absent\.sock/,
    );
  });
});

describe("exit codes and JSON errors", () => {
  /** The one JSON line on stderr, and nothing on stdout. */
  function jsonError(
    r: CliResult,
    exit: number,
  ): { code: string; message: string; exit: number; field?: string } {
    expect(r.code, r.stderr).toBe(exit);
    expect(r.stdout).toBe("");
    const lines = r.stderr.split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe("");
    const parsed = JSON.parse(lines[0] as string) as {
      error: { code: string; message: string; exit: number };
    };
    expect(Object.keys(parsed)).toEqual(["error"]);
    expect(parsed.error.exit).toBe(exit);
    return parsed.error;
  }

  test("not found: 3", async () => {
    failed(await cli(["get", "nope"]), 3, "secretsctl: name: secret 'nope' not found");
    expect(jsonError(await cli(["get", "nope", "--json"]), 3)).toEqual({
      code: "not_found",
      message: "name: secret 'nope' not found",
      exit: 3,
      field: "name",
    });
    failed(await cli(["vm", "remove", "nope"]), 3, "vm 'nope' not found");
  });

  test("permission: 4 (no token, a wrong token, a VM token out of its lane)", async () => {
    const vmToken = ok(await cli(["vm", "token", "web2"])).trim();
    const tcp = ["--server", d.tcp];
    failed(await runCli(["list", ...tcp]), 4, "authorization: ");
    const e = jsonError(
      await runCli(["list", "--json", ...tcp, "--token", "vmadm_wrongwrongwrong"]),
      4,
    );
    expect(e.code).toBe("unauthenticated");
    const denied = jsonError(
      await runCli(["--json", "get", "openai", ...tcp, "--token", vmToken]),
      4,
    );
    expect(denied.code).toBe("permission_denied");
    expect(denied.message).not.toContain(vmToken);
  });

  test("unavailable: 5", async () => {
    const sock = ["--socket", join(work, "absent.sock")];
    failed(await runCli(["list", ...sock]), 5, "cannot reach secretsd");
    expect(jsonError(await runCli(["list", "--json", ...sock]), 5).code).toBe("unavailable");
  });

  test("usage: 2, as JSON too, without the value", async () => {
    const v = value();
    const e = jsonError(await cli(["add", "x", v, "--json", "--scpoe", "vm:web1"]), 2);
    expect(e.code).toBe("usage");
    expect(e.message).toContain("unknown option --scpoe");
    expect(JSON.stringify(e)).not.toContain(v);
    expect(jsonError(await cli(["--json", "rotat"]), 2).message).toContain("did you mean rotate?");
  });

  test("anything else secretsd refuses: 1", async () => {
    failed(await cli(["add", "openai", value()]), 1, "name: ");
    const e = jsonError(await cli(["add", "Bad-Name", value(), "--json"]), 1);
    expect(e.code).toBe("invalid_argument");
    expect(e.field).toBe("name");
  });

  test("a local file that cannot be read: 1, code error", async () => {
    const e = jsonError(await cli(["import", join(work, "missing.env"), "--json"]), 1);
    expect(e.code).toBe("error");
  });
});

// --- internal ---

/**
 * `t LINE`: sets COMP_WORDS as readline splits LINE (at spaces and ':', COMP_WORDBREAKS),
 * calls the completion function, prints COMPREPLY on one line.
 */
const BASH_HARNESS = `t() {
  local line=$1 rest=$1 w=""
  COMP_LINE=$line; COMP_POINT=\${#line}; COMP_WORDS=()
  while [[ -n $rest ]]; do
    case \${rest:0:1} in
      " ") [[ -n $w ]] && COMP_WORDS+=("$w"); w="" ;;
      ":") [[ -n $w ]] && COMP_WORDS+=("$w"); COMP_WORDS+=(":"); w="" ;;
      *) w+=\${rest:0:1} ;;
    esac
    rest=\${rest:1}
  done
  COMP_WORDS+=("$w")
  COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _secretsctl
  printf "%s\\n" "\${COMPREPLY[*]}"
}`;

/**
 * Outside a completion widget compadd and _describe do not exist: stand-ins print what the
 * function offers (unfiltered: the real _describe filters by the word typed). `t LINE` sets
 * words and CURRENT and prints the offers sorted on one line.
 */
const ZSH_HARNESS = `compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }
_describe() { print -l -- "\${(@P)\${@[-1]}}" }
_files() { print -- "<files>" }
t() {
  words=("\${(@s: :)\${1% }}"); [[ $1 == *" " ]] && words+=(""); CURRENT=\${#words}
  _secretsctl | sort | tr "\\n" " "; print
}`;

/** The words of the secretsctl invocation in an example line (comments and pipes cut off). */
function commandWords(example: string): string[] {
  const code = example.replace(/\s+#\s.*$/, "");
  const at = code.indexOf("secretsctl ");
  expect(at, `${example}: no 'secretsctl ' in it`).toBeGreaterThanOrEqual(0);
  const tail = code.slice(at + "secretsctl ".length).split(/\s*[|>)]\s*/)[0] ?? "";
  return (tail.match(/'[^']*'|"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^['"]|['"]$/g, ""));
}
