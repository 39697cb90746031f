/**
 * secretsctl: the CLI over secretsd's gRPC API. One citty command per file in commands/,
 * loaded lazily. This file owns the process: it reads the command line itself (so a mistyped
 * command or option gets "did you mean", and an option citty would drop before the command
 * name is an error), renders help (with EXAMPLES, and EXIT STATUS at the top), and has the
 * single catch that prints `secretsctl: <message>` on one line, or one JSON line under
 * `--json`, with the exit code of errors.ts's table.
 */
import type { CommandDef } from "citty";
import { defineCommand, renderUsage, runCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { unknownOption } from "./command.js";
import { findSubcommand, setRootCommand, subcommandNames } from "./completion-tree.js";
import { connectionArgs, currentTarget } from "./connect.js";
import { describeError, EXIT_CODES, EXIT_STATUS_HELP, jsonError, UsageError } from "./errors.js";
import { examplesSection } from "./examples.js";
import { closest } from "./suggest.js";

type Lazy = () => Promise<CommandDef>;
const load = (p: Promise<{ default: unknown }>): Promise<CommandDef> =>
  p.then((m) => m.default as CommandDef);

const subCommands: Record<string, Lazy> = {
  add: () => load(import("./commands/add.js")),
  list: () => load(import("./commands/list.js")),
  get: () => load(import("./commands/get.js")),
  update: () => load(import("./commands/update.js")),
  remove: () => load(import("./commands/remove.js")),
  rotate: () => load(import("./commands/rotate.js")),
  versions: () => load(import("./commands/versions.js")),
  usage: () => load(import("./commands/usage.js")),
  rollback: () => load(import("./commands/rollback.js")),
  export: () => load(import("./commands/export.js")),
  run: () => load(import("./commands/run.js")),
  import: () => load(import("./commands/import.js")),
  status: () => load(import("./commands/status.js")),
  vm: () => load(import("./commands/vm.js")),
  group: () => load(import("./commands/group.js")),
  token: () => load(import("./commands/token.js")),
  user: () => load(import("./commands/user.js")),
  team: () => load(import("./commands/team.js")),
  oauth: () => load(import("./commands/oauth.js")),
  manifest: () => load(import("./commands/manifest.js")),
  rekey: () => load(import("./commands/rekey.js")),
  audit: () => load(import("./commands/audit.js")),
  tls: () => load(import("./commands/tls.js")),
  version: () => load(import("./commands/version.js")),
  completion: () => load(import("./commands/completion.js")),
  __complete: () => load(import("./commands/complete.js")),
};

const main = defineCommand({
  meta: {
    name: "secretsctl",
    version: pkg.version,
    description: "Manage secretsd: secrets, VMs, groups, tokens and the audit log",
  },
  subCommands,
});
setRootCommand(main);

/** The options any command takes, so they may come before its name: `secretsctl --json vm list`. */
const globalOptions: Record<string, { type: string }> = {
  ...connectionArgs,
  json: { type: "boolean" },
};

await runMain(process.argv.slice(2));

// --- internal ---

async function runMain(argv: string[]): Promise<void> {
  // One line per error: grpc-js's TLS-to-an-IP deprecation warning would be a second one.
  process.noDeprecation = true;
  // `secretsctl get x | head -c1` closes stdout early: that is not an error worth a stack.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  const beforeDashes = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : argv.length);
  const json = beforeDashes.includes("--json");
  let path: string[] = [];
  try {
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      process.stdout.write(`${pkg.version}\n`);
      return;
    }
    if (argv.length === 0) {
      process.stderr.write(`${await usage(main, [])}\n`);
      process.exitCode = EXIT_CODES.usage;
      return;
    }
    const line = await readCommandLine(argv, (p) => {
      path = p;
    });
    if (line.help) process.stdout.write(`${await usage(line.cmd, line.path)}\n`);
    else await runCommand(line.cmd, { rawArgs: line.args });
  } catch (err) {
    const help = ["secretsctl", ...path, "--help"].join(" ");
    const report = describeError(err, currentTarget(), help);
    process.stderr.write(json ? `${jsonError(report)}\n` : `secretsctl: ${report.message}\n`);
    process.exitCode = report.exitCode;
  }
}

/** A command line read against the tree: the command to run and the arguments it gets. */
interface CommandLine {
  cmd: CommandDef;
  /** The words naming it. */
  path: string[];
  /** Its own arguments, with the global options given before its name moved in. */
  args: string[];
  /** `--help` or `-h` before any `--`. */
  help: boolean;
}

/**
 * Walks the command line down the tree to a runnable command. citty would skip (and drop) an
 * option before a subcommand's name, and name an unknown command without a hint: here a
 * global option there moves to the end of the command's own arguments (before any `--`, so
 * `run -- CMD` is untouched), and anything else is a usage error with the closest match.
 * `onPath` hears the words resolved so far, for the error's help pointer.
 * @throws UsageError for an unknown command or option, or a group command given no command.
 */
async function readCommandLine(
  argv: readonly string[],
  onPath: (path: string[]) => void,
): Promise<CommandLine> {
  let cmd: CommandDef = main;
  const path: string[] = [];
  const moved: string[] = [];
  let help = false;
  let i = 0;
  for (; i < argv.length && cmd.subCommands !== undefined; i++) {
    const tok = argv[i] as string;
    if (tok === "--help" || tok === "-h") {
      help = true;
      continue;
    }
    if (tok.startsWith("-") && tok !== "-" && tok !== "--") {
      const def = tok.startsWith("--")
        ? globalOptions[tok.slice(2).split("=")[0] ?? ""]
        : undefined;
      if (!def)
        throw new UsageError(
          unknownOption(
            tok,
            Object.keys(globalOptions).map((k) => `--${k}`),
          ),
        );
      moved.push(tok);
      if (def.type === "string" && !tok.includes("=") && i + 1 < argv.length) {
        moved.push(argv[++i] as string);
      }
      continue;
    }
    const next = tok === "--" ? undefined : await findSubcommand(cmd, tok);
    if (!next) throw new UsageError(await unknownCommand(cmd, path, tok));
    path.push(tok);
    onPath([...path]);
    cmd = next;
  }
  const rest = argv.slice(i);
  const dashes = rest.includes("--") ? rest.indexOf("--") : rest.length;
  help ||= rest.slice(0, dashes).some((t) => t === "--help" || t === "-h");
  if (cmd.subCommands !== undefined && !help) {
    const names = await subcommandNames(cmd);
    throw new UsageError(
      `${["secretsctl", ...path].join(" ")} needs a command: ${names.join(", ")}`,
    );
  }
  const args = [...rest.slice(0, dashes), ...moved, ...rest.slice(dashes)];
  return { cmd, path, args, help };
}

/**
 * `unknown command rotat (did you mean rotate?)`. A word that does not look like a command
 * (it may be a value typed in the wrong place) is not repeated.
 */
async function unknownCommand(cmd: CommandDef, path: string[], word: string): Promise<string> {
  const where = path.length === 0 ? "" : ` for 'secretsctl ${path.join(" ")}'`;
  if (!/^[a-z][a-z-]{0,23}$/.test(word)) return `unknown command${where}`;
  const hit = closest(word, await subcommandNames(cmd));
  return `unknown command ${word}${where}${hit === undefined ? "" : ` (did you mean ${hit}?)`}`;
}

/**
 * Usage of a command, titled with its full path, then its EXAMPLES; the root's ends with the
 * EXIT STATUS table.
 */
async function usage(cmd: CommandDef, path: string[]): Promise<string> {
  const parent =
    path.length === 0
      ? undefined
      : defineCommand({
          meta: { name: ["secretsctl", ...path.slice(0, -1)].join(" "), version: pkg.version },
        });
  const text = stripAnsi(await renderUsage(cmd, parent)).trimEnd();
  const sections = [text, examplesSection(path)];
  if (path.length === 0) sections.splice(1, 0, globalOptionsSection());
  if (path.length === 0) sections.push(exitStatusSection());
  return sections.filter((s) => s !== "").join("\n\n");
}

/** The root's own usage lists no options: say which ones every command takes. */
function globalOptionsSection(): string {
  const names = Object.keys(globalOptions).map((k) => `--${k}`);
  return [
    "GLOBAL OPTIONS",
    "",
    `  ${names.join(", ")}`,
    "  Every command that talks to secretsd takes these, before or after its name.",
  ].join("\n");
}

function exitStatusSection(): string {
  const rows = EXIT_STATUS_HELP.map(([code, what]) => `  ${String(code).padStart(3)}  ${what}`);
  return ["EXIT STATUS", "", ...rows].join("\n");
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing ANSI colour codes
  return text.replace(/\u001b\[[0-9;]*m/g, "").replace(/[ \t]+$/gm, "");
}
