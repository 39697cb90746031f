/**
 * Errors as clients see them: the gRPC status mapped back to the same snake_case codes the
 * server uses, plus the request field the server named (x-field trailer), when any.
 */

import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";

export type ClientErrorCode =
  | "not_found"
  | "already_exists"
  | "invalid_argument"
  | "failed_precondition"
  | "unauthenticated"
  | "permission_denied"
  | "resource_exhausted"
  | "aborted"
  | "unavailable"
  | "internal"
  | "cancelled"
  | "deadline_exceeded"
  | "unimplemented"
  | "unknown";

const CODES: Partial<Record<status, ClientErrorCode>> = {
  [status.NOT_FOUND]: "not_found",
  [status.ALREADY_EXISTS]: "already_exists",
  [status.INVALID_ARGUMENT]: "invalid_argument",
  [status.FAILED_PRECONDITION]: "failed_precondition",
  [status.UNAUTHENTICATED]: "unauthenticated",
  [status.PERMISSION_DENIED]: "permission_denied",
  [status.RESOURCE_EXHAUSTED]: "resource_exhausted",
  [status.ABORTED]: "aborted",
  [status.UNAVAILABLE]: "unavailable",
  [status.INTERNAL]: "internal",
  [status.CANCELLED]: "cancelled",
  [status.DEADLINE_EXCEEDED]: "deadline_exceeded",
  [status.UNIMPLEMENTED]: "unimplemented",
};

/** A failed call. `message` is the server's text (never a value or token). */
export class ClientError extends Error {
  override readonly name = "ClientError";
  constructor(
    readonly code: ClientErrorCode,
    readonly grpcCode: status,
    message: string,
    readonly field: string | undefined,
    readonly requestId: string | undefined,
  ) {
    super(message);
  }
}

export function isClientError(err: unknown): err is ClientError {
  return err instanceof Error && err.name === "ClientError";
}

/** Converts a grpc-js ServiceError to a ClientError. */
export function fromServiceError(err: ServiceError): ClientError {
  const field = err.metadata?.get("x-field")[0];
  const requestId = err.metadata?.get("x-request-id")[0];
  return new ClientError(
    CODES[err.code] ?? "unknown",
    err.code,
    err.details || err.message,
    typeof field === "string" ? field : undefined,
    typeof requestId === "string" ? requestId : undefined,
  );
}
