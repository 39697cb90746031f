/**
 * The `--unit NAME[:KEY1,KEY2|*][:restart|reload]` grammar: one dependent unit on the command
 * line, the same thing as one entry of the config file's `units` (validated by the same
 * resolveUnitSpec, so the two cannot drift).
 */
import { ShimConfigError, type UnitAction, type UnitSpec } from "./config.js";
import { resolveUnitSpec } from "./resolve-config.js";

/**
 * Parses `--unit app.service[:KEY1,KEY2|*][:restart|reload]`. A name without a type suffix
 * gets `.service`. Keys default to `*`, the action to restart. The name cannot hold `:`.
 * @throws ShimConfigError naming the flag
 */
export function parseUnitFlag(spec: string): UnitSpec {
  const [name = "", ...rest] = spec.split(":");
  let keys: string[] = ["*"];
  let action: UnitAction = "restart";
  const last = rest[rest.length - 1];
  if (last === "restart" || last === "reload") {
    action = last;
    rest.pop();
  }
  if (rest.length === 1 && /^(\*|[A-Z_][A-Z0-9_]*(,[A-Z_][A-Z0-9_]*)*)$/.test(rest[0] ?? "")) {
    keys = (rest[0] ?? "").split(",");
    rest.pop();
  }
  if (rest.length > 0) {
    throw new ShimConfigError(
      `--unit ${spec}: '${rest.join(":")}' is neither env var names (KEY1,KEY2 or *) nor restart|reload`,
    );
  }
  return resolveUnitSpec({ name, keys, action }, `--unit ${spec}`);
}

/** The `--unit` syntax of a spec: `parseUnitFlag(formatUnitFlag(u))` equals `u`. */
export function formatUnitFlag(u: UnitSpec): string {
  return `${u.name}:${u.keys.join(",")}:${u.action}`;
}
