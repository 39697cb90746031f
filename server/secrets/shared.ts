import type { AuditEntry, AuditKind } from "../audit/audit.js";
import { isSecretsError } from "../errors.js";
import { actorOf } from "./caller.js";
import type { Actor, Deps } from "./context.js";

type Extra = Partial<Pick<AuditEntry, "secret" | "vm" | "version" | "revision" | "detail">>;

/**
 * Runs a use case and writes its audit entry with the result (ok or the error code). `kind`
 * says what the use case does, and so whether a lost entry fails it (AuditKind): a read's
 * value is returned only once its entry is recorded; a change already durable is still
 * acknowledged. A use case that fails keeps its own error.
 */
export async function audited<T>(
  deps: Deps,
  actor: Actor,
  kind: AuditKind,
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
    // The broker has logged a lost entry; the use case's own error is the answer.
    await deps.audit.record(kind, { ...base, ...extra, result: code }).catch(() => {});
    throw err;
  }
  const revision = (result as { revision?: unknown } | undefined)?.revision;
  if (typeof revision === "number" && extra.revision === undefined) extra.revision = revision;
  await deps.audit.record(kind, { ...base, ...extra, result: "ok" });
  return result;
}
