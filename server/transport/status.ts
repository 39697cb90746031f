/**
 * The one place where errors become gRPC statuses. `STATUS` is a Record over ErrorCode, so a
 * code without a status is a compile error. Unknown errors become INTERNAL with a generic
 * message; the original is only logged (with the request id), never sent.
 */

import type { ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import type { ErrorCode } from "../errors.js";
import { isSecretsError } from "../errors.js";

const STATUS: Record<ErrorCode, status> = {
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  invalid_argument: status.INVALID_ARGUMENT,
  failed_precondition: status.FAILED_PRECONDITION,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  aborted: status.ABORTED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/** What a failed call answers, and whether the cause is unexpected (to be logged as an error). */
export interface MappedError {
  error: Partial<ServiceError>;
  unexpected: boolean;
  /** The domain code, or the status name for aborts, for the audit log. */
  result: string;
}

/** Maps any thrown value to the status the client receives. */
export function toServiceError(err: unknown, requestId: string, signal?: AbortSignal): MappedError {
  const metadata = new Metadata();
  metadata.set("x-request-id", requestId);
  if (isSecretsError(err)) {
    if (err.field) metadata.set("x-field", err.field);
    return {
      error: { code: STATUS[err.code], details: err.message, metadata },
      unexpected: err.code === "internal",
      result: err.code,
    };
  }
  if (signal?.aborted || (err instanceof Error && err.name === "AbortError")) {
    const reason = signal?.reason;
    const deadline = reason instanceof Error && reason.name === "TimeoutError";
    return {
      error: {
        code: deadline ? status.DEADLINE_EXCEEDED : status.CANCELLED,
        details: deadline ? "deadline exceeded" : "cancelled",
        metadata,
      },
      unexpected: false,
      result: deadline ? "deadline_exceeded" : "cancelled",
    };
  }
  return {
    error: { code: status.INTERNAL, details: `internal error (request ${requestId})`, metadata },
    unexpected: true,
    result: "internal",
  };
}
