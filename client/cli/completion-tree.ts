/**
 * The live command tree as plain data: every command path with its subcommands, flags (with
 * enum values) and positionals, read from the citty definitions themselves (lazily loaded),
 * so completion scripts, "did you mean" and the examples check can never drift from what the
 * commands accept. main.ts registers the root with `setRootCommand`.
 */
import type { ArgDef, CommandDef } from "citty";

/** One flag of a command. */
export interface FlagInfo {
  /** The long name, without `--`. */
  name: string;
  /** `boolean` flags take no value. */
  type: "boolean" | "string" | "enum";
  description: string;
  /** Values of an enum flag (citty checks them). */
  options: string[];
  /** One-letter or long aliases, without dashes. */
  aliases: string[];
}

/** One positional argument of a command. */
export interface PositionalInfo {
  name: string;
  required: boolean;
  description: string;
}

/** One command, at a path of words under `secretsctl`. */
export interface CommandInfo {
  /** The words after `secretsctl`, e.g. ["vm", "add"]; [] is the root. */
  path: string[];
  description: string;
  /** A hidden command (`__complete`) is left out of help and completion. */
  hidden: boolean;
  /** Subcommand names with their aliases (empty for a runnable command). */
  subcommands: { name: string; aliases: string[]; hidden: boolean }[];
  flags: FlagInfo[];
  positionals: PositionalInfo[];
}

let root: CommandDef | undefined;

/** Called once by main.ts: the tree the commands below walk. */
export function setRootCommand(cmd: CommandDef): void {
  root = cmd;
}

/**
 * The registered root command.
 * @throws Error when main.ts has not registered it (a programming error).
 */
export function rootCommand(): CommandDef {
  if (!root) throw new Error("internal: the command tree is not registered");
  return root;
}

/** Every command in the tree, depth first, parents before children; the root first. */
export async function walkCommands(cmd: CommandDef = rootCommand()): Promise<CommandInfo[]> {
  const out: CommandInfo[] = [];
  await visit(cmd, [], out);
  return out;
}

/** A command's subcommand by name or alias, or undefined. */
export async function findSubcommand(
  cmd: CommandDef,
  name: string,
): Promise<CommandDef | undefined> {
  const subs = await resolve(cmd.subCommands);
  if (!subs) return undefined;
  if (Object.hasOwn(subs, name)) return resolve(subs[name]) as Promise<CommandDef>;
  for (const sub of Object.values(subs)) {
    const def = (await resolve(sub)) as CommandDef;
    const alias = (await resolve(def.meta))?.alias;
    if (alias !== undefined && [alias].flat().includes(name)) return def;
  }
  return undefined;
}

/** The names (not aliases) of a command's visible subcommands, in definition order. */
export async function subcommandNames(cmd: CommandDef): Promise<string[]> {
  return (await describe(cmd, [])).subcommands.filter((s) => !s.hidden).map((s) => s.name);
}

/** The flags and positionals of one command. */
export async function describe(cmd: CommandDef, path: string[]): Promise<CommandInfo> {
  const meta = await resolve(cmd.meta);
  const args = (await resolve(cmd.args)) ?? {};
  const flags: FlagInfo[] = [];
  const positionals: PositionalInfo[] = [];
  for (const [name, def] of Object.entries(args) as [string, ArgDef][]) {
    const description = def.description ?? "";
    if (def.type === "positional") {
      positionals.push({ name, required: def.required !== false, description });
      continue;
    }
    const type = def.type === "boolean" || def.type === "enum" ? def.type : "string";
    const options = def.type === "enum" ? [...(def.options ?? [])] : [];
    const aliases = "alias" in def && def.alias !== undefined ? [def.alias].flat() : [];
    flags.push({ name, type, description, options, aliases });
  }
  const subcommands: CommandInfo["subcommands"] = [];
  for (const [name, sub] of Object.entries((await resolve(cmd.subCommands)) ?? {})) {
    const subMeta = await resolve(((await resolve(sub)) as CommandDef).meta);
    const alias = subMeta?.alias;
    subcommands.push({
      name,
      aliases: alias === undefined ? [] : [alias].flat(),
      hidden: subMeta?.hidden === true,
    });
  }
  return {
    path,
    description: meta?.description ?? "",
    hidden: meta?.hidden === true,
    subcommands,
    flags,
    positionals,
  };
}

// --- internal ---

async function visit(cmd: CommandDef, path: string[], out: CommandInfo[]): Promise<void> {
  const info = await describe(cmd, path);
  out.push(info);
  const subs = (await resolve(cmd.subCommands)) ?? {};
  for (const [name, sub] of Object.entries(subs)) {
    await visit((await resolve(sub)) as CommandDef, [...path, name], out);
  }
}

async function resolve<T>(
  v: T | Promise<T> | (() => T | Promise<T>) | undefined,
): Promise<T | undefined> {
  return typeof v === "function" ? (v as () => T | Promise<T>)() : v;
}
