/**
 * The one domain error type. Every layer below the transport throws `SecretsError`; the
 * transport maps `code` to a gRPC status in one place (transport/status.ts).
 *
 * Messages may name secrets, VMs, fields and env vars, never a value, token or key.
 */
export type ErrorCode =
  | "not_found"
  | "already_exists"
  | "invalid_argument"
  | "failed_precondition"
  | "unauthenticated"
  | "permission_denied"
  | "resource_exhausted"
  | "aborted"
  | "unavailable"
  | "internal";

/** A domain error with a closed set of codes; `field` names the offending request field. */
export class SecretsError extends Error {
  override readonly name = "SecretsError";
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.field = opts.field;
  }
}

/** True when `err` is a SecretsError (also across module copies). */
export function isSecretsError(err: unknown): err is SecretsError {
  return err instanceof Error && err.name === "SecretsError" && "code" in err;
}

/** `field: message`: the request field is always named first. */
export function invalidArgument(field: string, message: string): SecretsError {
  return new SecretsError("invalid_argument", `${field}: ${message}`, { field });
}

export function notFound(kind: string, name: string, field?: string): SecretsError {
  const msg = `${field ? `${field}: ` : ""}${kind} '${name}' not found`;
  return new SecretsError("not_found", msg, field === undefined ? {} : { field });
}

export function alreadyExists(field: string, message: string): SecretsError {
  return new SecretsError("already_exists", `${field}: ${message}`, { field });
}

export function failedPrecondition(message: string, field?: string): SecretsError {
  return new SecretsError("failed_precondition", message, field === undefined ? {} : { field });
}

export function permissionDenied(message: string, field?: string): SecretsError {
  return new SecretsError("permission_denied", message, field === undefined ? {} : { field });
}

export function unauthenticated(message: string): SecretsError {
  return new SecretsError("unauthenticated", message);
}

export function aborted(message: string): SecretsError {
  return new SecretsError("aborted", message);
}

export function unavailable(message: string, field?: string): SecretsError {
  return new SecretsError("unavailable", message, field === undefined ? {} : { field });
}

export function resourceExhausted(message: string, field?: string): SecretsError {
  return new SecretsError("resource_exhausted", message, field === undefined ? {} : { field });
}
