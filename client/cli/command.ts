/**
 * `defineClientCommand`: a citty command that talks to secretsd. It adds the connection flags
 * and `--json`, checks the command line strictly (citty accepts unknown options silently, and a
 * mistyped `--scpoe vm:x` would otherwise create a global secret), builds the client before
 * `run` and closes it in `cleanup`, which citty runs even when `run` throws.
 */
import type { ArgDef, ArgsDef, CommandContext, CommandDef, CommandMeta, ParsedArgs } from "citty";
import { defineCommand } from "citty";
import type { VmAuthClient } from "../index.js";
import { connect, connectionArgs } from "./connect.js";
import { UsageError } from "./errors.js";
import { closest } from "./suggest.js";

const commonArgs = {
  ...connectionArgs,
  json: { type: "boolean", description: "print JSON (stable field names, ISO times)" },
} as const;

/** The flags every client command takes. */
export type CommonArgs = typeof commonArgs;

/** What a command's `run` gets. */
export interface RunContext<T extends ArgsDef> {
  args: ParsedArgs<T & CommonArgs>;
  client: VmAuthClient;
  /** Whether --json was given. */
  json: boolean;
  /** Every value given for a repeatable flag, in order (citty keeps only the last). */
  all(name: string): string[];
}

/** A client command's definition. */
export interface ClientCommandDef<T extends ArgsDef> {
  meta: CommandMeta;
  args: T;
  /** Flags that may be given more than once (read them with `all`). */
  repeatable?: readonly (keyof T & string)[];
  run(ctx: RunContext<T>): Promise<void>;
}

interface State {
  client?: VmAuthClient;
  values: Map<string, string[]>;
}

/** Defines a command that connects to secretsd; see the module comment. */
export function defineClientCommand<const T extends ArgsDef>(
  def: ClientCommandDef<T>,
): CommandDef<T & CommonArgs> {
  const args = { ...commonArgs, ...def.args } as T & CommonArgs;
  const states = new WeakMap<object, State>();
  return defineCommand<T & CommonArgs>({
    meta: def.meta,
    args,
    setup(ctx: CommandContext<T & CommonArgs>) {
      const values = scanArgs(ctx.rawArgs, args, def.repeatable ?? []);
      states.set(ctx, { values, client: connect(ctx.args) });
    },
    async run(ctx: CommandContext<T & CommonArgs>) {
      const state = states.get(ctx);
      if (!state?.client) throw new Error("internal: command set up without a client");
      await def.run({
        args: ctx.args,
        client: state.client,
        json: ctx.args.json === true,
        all: (name) => state.values.get(name) ?? [],
      });
    },
    cleanup(ctx: CommandContext<T & CommonArgs>) {
      states.get(ctx)?.client?.close();
    },
  });
}

/** A local command's definition: no connection flags, no client. */
export interface LocalCommandDef<T extends ArgsDef> {
  meta: CommandMeta;
  args: T;
  run(ctx: { args: ParsedArgs<T> }): Promise<void>;
}

/**
 * Defines a command that never talks to secretsd (`completion`): the same strict command-line
 * check as a client command, without the connection flags it would ignore.
 */
export function defineLocalCommand<const T extends ArgsDef>(
  def: LocalCommandDef<T>,
): CommandDef<T> {
  return defineCommand<T>({
    meta: def.meta,
    args: def.args,
    setup(ctx: CommandContext<T>) {
      scanArgs(ctx.rawArgs, def.args);
    },
    async run(ctx: CommandContext<T>) {
      await def.run({ args: ctx.args });
    },
  });
}

/**
 * The message for an option no command defines, with the closest known one when there is
 * one. Names the option only when it looks like one: a value that starts with '-' (put after
 * `--` by mistake) may be a secret, so it is never repeated.
 */
export function unknownOption(flag: string, known: readonly string[]): string {
  if (!/^--[a-z][a-z-]{0,30}$/.test(flag)) {
    return "unknown option (a value starting with '-' goes after '--')";
  }
  // Only the spellings help shows: not the camelCase twins citty also accepts.
  const names = known.filter((k) => /^--[a-z][a-z-]*$/.test(k)).map((k) => k.slice(2));
  const hit = closest(flag.slice(2), names);
  return `unknown option ${flag}${hit === undefined ? "" : ` (did you mean --${hit}?)`}`;
}

// --- internal ---

/**
 * Checks a command line against its definition and returns the value(s) of each option.
 * @throws UsageError for an unknown option, a missing option value, a non-repeatable option
 *   given twice, or more positionals than defined. Messages never repeat a positional, which
 *   may be a secret value.
 */
function scanArgs(
  rawArgs: readonly string[],
  defs: ArgsDef,
  repeatable: readonly string[] = [],
): Map<string, string[]> {
  const byFlag = flagTable(defs);
  const maxPositionals = Object.values(defs).filter((d) => d.type === "positional").length;
  const values = new Map<string, string[]>();
  const seen = new Set<string>();
  let positionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const tok = rawArgs[i] as string;
    if (tok === "--") {
      positionals += rawArgs.length - i - 1;
      break;
    }
    if (!tok.startsWith("-") || tok === "-") {
      positionals++;
      continue;
    }
    const eq = tok.indexOf("=");
    const flag = eq === -1 ? tok : tok.slice(0, eq);
    const hit = byFlag.get(flag) ?? negated(byFlag, flag);
    if (!hit) throw new UsageError(unknownOption(flag, [...byFlag.keys()]));
    if (seen.has(hit.name) && !repeatable.includes(hit.name)) {
      throw new UsageError(`--${hit.name} given more than once`);
    }
    seen.add(hit.name);
    if (hit.def.type === "boolean") continue;
    let value: string;
    if (eq !== -1) value = tok.slice(eq + 1);
    else if (i + 1 < rawArgs.length) value = rawArgs[++i] as string;
    else throw new UsageError(`--${hit.name} needs a value`);
    values.set(hit.name, [...(values.get(hit.name) ?? []), value]);
  }
  if (positionals > maxPositionals) {
    throw new UsageError(
      maxPositionals === 0
        ? "this command takes no arguments"
        : `too many arguments (at most ${maxPositionals})`,
    );
  }
  return values;
}

interface Flag {
  name: string;
  def: ArgDef;
}

function flagTable(defs: ArgsDef): Map<string, Flag> {
  const byFlag = new Map<string, Flag>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const n of new Set([name, camel, kebab])) byFlag.set(`--${n}`, { name, def });
    const aliases = "alias" in def && def.alias !== undefined ? [def.alias].flat() : [];
    for (const a of aliases) byFlag.set(a.length === 1 ? `-${a}` : `--${a}`, { name, def });
  }
  return byFlag;
}

/** `--no-X` for a boolean X (citty reads it as X=false). */
function negated(byFlag: Map<string, Flag>, flag: string): Flag | undefined {
  if (!flag.startsWith("--no-")) return undefined;
  const hit = byFlag.get(`--${flag.slice(5)}`);
  return hit?.def.type === "boolean" ? hit : undefined;
}
