import type { AuditEntry } from "../audit/audit.js";
import { isSecretsError } from "../errors.js";
import { actorOf } from "./caller.js";
import type { Actor, Deps } from "./context.js";

type Extra = Partial<Pick<AuditEntry, "secret" | "vm" | "version" | "revision" | "detail">>;

/**
 * Runs a use case and writes its audit entry with the result (ok or the error code).
 * Reads fail closed: a value is returned only once its read is recorded. A change that is
 * already durable is still acknowledged when the audit write fails; that failure is logged.
 */
export async function audited<T>(
  deps: Deps,
  actor: Actor,
  action: string,
  fields: Extra,
  fn: (note: (extra: Extra) => void) => Promise<T>,
): Promise<T> {
  const extra: Extra = { ...fields };
  const note = (more: Extra) => Object.assign(extra, more);
  const base = { requestId: actor.requestId, actor: actorOf(actor.caller), action };
  let result: T;
  try {
    result = await fn(note);
  } catch (err) {
    const code = isSecretsError(err) ? err.code : "internal";
    await deps.audit.record({ ...base, ...extra, result: code }).catch((auditErr) => {
      deps.log.error("audit write failed", { action, err: auditErr });
    });
    throw err;
  }
  const revision = (result as { revision?: unknown } | undefined)?.revision;
  if (typeof revision === "number" && extra.revision === undefined) extra.revision = revision;
  const entry = { ...base, ...extra, result: "ok" };
  if (action.endsWith(".read") || action === "env.get") {
    await deps.audit.record(entry);
  } else {
    await deps.audit.record(entry).catch((err) => {
      deps.log.error("audit write failed after a durable change", { action, err });
    });
  }
  return result;
}
