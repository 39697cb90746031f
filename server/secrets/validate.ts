/**
 * Input rules shared by every use case. Each check throws INVALID_ARGUMENT naming the field;
 * no message ever repeats a value.
 */
import { invalidArgument } from "../errors.js";

const SECRET_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;
export const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,254}$/;
/** VM and group names: hostname-like. */
const NODE_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const MAX_VALUE_BYTES = 64 * 1024;
/** Labels per secret: each is stored and listed with every secret (issue #8: no cap before). */
const MAX_LABELS = 64;
const LABEL_KEY = /^[a-z0-9][a-z0-9_./-]{0,62}$/;

/** A parsed scope. */
export type Scope =
  | { kind: "global" }
  /** Host-only: stored and used on the host (infrastructure), never in any VM's view. */
  | { kind: "host" }
  | { kind: "group"; name: string }
  | { kind: "vm"; name: string };

export function checkSecretName(field: string, name: string): string {
  if (name === "") throw invalidArgument(field, "is required");
  if (!SECRET_NAME.test(name)) {
    throw invalidArgument(field, `'${clip(name)}' must match ${SECRET_NAME.source}`);
  }
  return name;
}

export function checkEnvName(field: string, env: string): string {
  if (!ENV_NAME.test(env)) {
    throw invalidArgument(field, `'${clip(env)}' must match ^[A-Z_][A-Z0-9_]*$ (at most 255)`);
  }
  return env;
}

export function checkNodeName(field: string, kind: string, name: string): string {
  if (name === "") throw invalidArgument(field, `${kind} name is required`);
  if (!NODE_NAME.test(name)) {
    throw invalidArgument(field, `${kind} name '${clip(name)}' must match ${NODE_NAME.source}`);
  }
  return name;
}

/** Values: non-empty UTF-8 text up to 64 KiB without NUL. Never echoed. */
export function checkValue(field: string, value: string): string {
  if (value === "") throw invalidArgument(field, "must not be empty");
  if (value.includes("\0")) throw invalidArgument(field, "must not contain NUL");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_VALUE_BYTES) {
    throw invalidArgument(field, `is ${bytes} bytes; the limit is ${MAX_VALUE_BYTES}`);
  }
  return value;
}

export function parseScope(field: string, scope: string): Scope {
  if (scope === "" || scope === "global") return { kind: "global" };
  if (scope === "host") return { kind: "host" };
  const m = /^(group|vm):(.*)$/.exec(scope);
  if (!m?.[1] || m[2] === undefined) {
    throw invalidArgument(field, `'${clip(scope)}' must be global, group:NAME, vm:NAME or host`);
  }
  const kind = m[1] as "group" | "vm";
  return { kind, name: checkNodeName(field, kind, m[2]) };
}

export function formatScope(scope: Scope): string {
  return scope.kind === "global" || scope.kind === "host"
    ? scope.kind
    : `${scope.kind}:${scope.name}`;
}

export function checkLabels(field: string, labels: Record<string, string>): Record<string, string> {
  const count = Object.keys(labels).length;
  if (count > MAX_LABELS)
    throw invalidArgument(field, `${count} labels; the limit is ${MAX_LABELS}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) throw invalidArgument(field, `label key '${clip(k)}' is invalid`);
    if (v.length > 256) throw invalidArgument(field, `label '${k}' is longer than 256`);
    out[k] = v;
  }
  return out;
}

export function checkDescription(field: string, text: string): string {
  if (text.length > 1024) throw invalidArgument(field, "is longer than 1024 characters");
  return text;
}

// --- internal ---

/** Names are not secret, but a huge one should not flood a log line. */
function clip(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 70 ? `${printable.slice(0, 67)}...` : printable;
}
