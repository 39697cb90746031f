/**
 * secretsctl: the CLI over secretsd's gRPC API. One citty command per file in commands/,
 * loaded lazily. This file owns the process: help and version, the single catch that prints
 * `secretsctl: <message>` on one line, and the exit code (1 for errors, 2 for usage errors).
 */
import type { CommandDef } from "citty";
import { defineCommand, renderUsage, runCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { connectionArgs, currentTarget } from "./connect.js";
import { describeError } from "./errors.js";

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
  rollback: () => load(import("./commands/rollback.js")),
  export: () => load(import("./commands/export.js")),
  run: () => load(import("./commands/run.js")),
  import: () => load(import("./commands/import.js")),
  status: () => load(import("./commands/status.js")),
  vm: () => load(import("./commands/vm.js")),
  group: () => load(import("./commands/group.js")),
  token: () => load(import("./commands/token.js")),
  oauth: () => load(import("./commands/oauth.js")),
  manifest: () => load(import("./commands/manifest.js")),
  rekey: () => load(import("./commands/rekey.js")),
  audit: () => load(import("./commands/audit.js")),
};

const main = defineCommand({
  meta: {
    name: "secretsctl",
    version: pkg.version,
    description: "Manage secretsd: secrets, VMs, groups, tokens and the audit log",
  },
  subCommands,
});

await runMain(process.argv.slice(2));

// --- internal ---

async function runMain(rawArgv: string[]): Promise<void> {
  // One line per error: grpc-js's TLS-to-an-IP deprecation warning would be a second one.
  process.noDeprecation = true;
  const argv = hoistLeadingOptions(rawArgv);
  // `secretsctl get x | head -c1` closes stdout early: that is not an error worth a stack.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  try {
    const beforeDashes = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : argv.length);
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      process.stdout.write(`${pkg.version}\n`);
    } else if (argv.length === 0) {
      process.stderr.write(`${await usage(argv)}\n`);
      process.exitCode = 2;
    } else if (beforeDashes.includes("--help") || beforeDashes.includes("-h")) {
      process.stdout.write(`${await usage(beforeDashes)}\n`);
    } else {
      await runCommand(main, { rawArgs: argv });
    }
  } catch (err) {
    const path = await commandPath(argv).catch(() => []);
    const report = describeError(err, currentTarget(), ["secretsctl", ...path, "--help"].join(" "));
    process.stderr.write(`secretsctl: ${report.message}\n`);
    process.exitCode = report.exitCode;
  }
}

/**
 * `secretsctl --server H:P list` reads naturally, but citty only parses a command's options
 * after the command: move leading connection options (and --json) to the end of the line.
 */
function hoistLeadingOptions(argv: string[]): string[] {
  const global: Record<string, { type: string }> = { ...connectionArgs, json: { type: "boolean" } };
  const lead: string[] = [];
  let i = 0;
  for (let tok = argv[i]; tok?.startsWith("--") && tok !== "--"; tok = argv[i]) {
    const def = global[tok.slice(2).split("=")[0] ?? ""];
    if (!def) break;
    lead.push(tok);
    i++;
    if (def.type === "string" && !tok.includes("=") && i < argv.length)
      lead.push(argv[i++] as string);
  }
  if (lead.length === 0) return argv;
  const rest = argv.slice(i);
  const end = rest.includes("--") ? rest.indexOf("--") : rest.length;
  return [...rest.slice(0, end), ...lead, ...rest.slice(end)];
}

/** The deepest command named on the command line, and the words naming it. */
async function resolvePath(argv: string[]): Promise<{ cmd: CommandDef; path: string[] }> {
  let cmd: CommandDef = main;
  const path: string[] = [];
  for (const word of argv) {
    if (word === "--") break;
    if (word.startsWith("-")) continue;
    const next = await findSub(cmd, word);
    if (!next) break;
    path.push(word);
    cmd = next;
  }
  return { cmd, path };
}

async function commandPath(argv: string[]): Promise<string[]> {
  return (await resolvePath(argv)).path;
}

/** Usage of the deepest command named on the command line, titled with its full path. */
async function usage(argv: string[]): Promise<string> {
  const { cmd, path } = await resolvePath(argv);
  if (path.length === 0) return stripAnsi(await renderUsage(main));
  const parent = defineCommand({
    meta: { name: ["secretsctl", ...path.slice(0, -1)].join(" "), version: pkg.version },
  });
  return stripAnsi(await renderUsage(cmd, parent));
}

async function findSub(cmd: CommandDef, name: string): Promise<CommandDef | undefined> {
  const subs = await resolve(cmd.subCommands);
  if (!subs) return undefined;
  if (subs[name]) return resolve(subs[name]) as Promise<CommandDef>;
  for (const sub of Object.values(subs)) {
    const def = (await resolve(sub)) as CommandDef;
    const alias = (await resolve(def.meta))?.alias;
    if (alias !== undefined && [alias].flat().includes(name)) return def;
  }
  return undefined;
}

async function resolve<T>(
  v: T | Promise<T> | (() => T | Promise<T>) | undefined,
): Promise<T | undefined> {
  return typeof v === "function" ? (v as () => T | Promise<T>)() : v;
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing ANSI colour codes
  return text.replace(/\u001b\[[0-9;]*m/g, "").replace(/[ \t]+$/gm, "");
}
