/**
 * The strict command-line check of client/cli/command.ts, for local commands (`tls init`,
 * `tls show`) that never build a client: citty accepts unknown options silently and keeps only
 * the last of a repeated one, so `--sna 10.0.0.1` or a second `--san` would be lost quietly.
 * These commands take no positionals and no secret, so messages may quote what was given.
 */
import type { ArgsDef } from "citty";
import { UsageError } from "../errors.js";

/** Every value given for each string option, in order; boolean options map to []. */
export type ScannedArgs = Map<string, string[]>;

/**
 * Checks `rawArgs` against `defs` and returns what was given.
 * @throws UsageError for an unknown option, a missing value, a positional, or a
 *   non-repeatable option given twice
 */
export function scanLocalArgs(
  rawArgs: readonly string[],
  defs: ArgsDef,
  repeatable: readonly string[] = [],
): ScannedArgs {
  const got: ScannedArgs = new Map();
  for (let i = 0; i < rawArgs.length; i++) {
    const tok = rawArgs[i] as string;
    if (!tok.startsWith("--") || tok === "--")
      throw new UsageError("this command takes no arguments");
    const eq = tok.indexOf("=");
    const name = tok.slice(2, eq === -1 ? undefined : eq);
    const def = defs[name];
    if (!def || def.type === "positional") {
      throw new UsageError(
        /^[a-z][a-z-]{0,30}$/.test(name) ? `unknown option --${name}` : "unknown option",
      );
    }
    if (got.has(name) && !repeatable.includes(name)) {
      throw new UsageError(`--${name} given more than once`);
    }
    const values = got.get(name) ?? [];
    got.set(name, values);
    if (def.type === "boolean") {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      continue;
    }
    if (eq !== -1) values.push(tok.slice(eq + 1));
    else if (i + 1 < rawArgs.length) values.push(rawArgs[++i] as string);
    else throw new UsageError(`--${name} needs a value`);
  }
  return got;
}

/** The single value of a string option, or undefined. */
export function single(args: ScannedArgs, name: string): string | undefined {
  return args.get(name)?.[0];
}
