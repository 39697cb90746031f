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
  const tooLarge = tooLargeMessage(err);
  if (tooLarge) {
    const id = typeof requestId === "string" ? requestId : undefined;
    return new ClientError("resource_exhausted", err.code, tooLarge.message, tooLarge.field, id);
  }
  return new ClientError(
    CODES[err.code] ?? "unknown",
    err.code,
    err.details || err.message,
    typeof field === "string" ? field : undefined,
    typeof requestId === "string" ? requestId : undefined,
  );
}

// --- internal ---

/** The client's own receive limit (index.ts): a response larger than it fails the same way. */
const CLIENT_MAX_RECEIVE = 64 * 1024 * 1024;

/**
 * grpc-js refuses a message over a receive limit with RESOURCE_EXHAUSTED "Received message
 * larger than max (N vs M)", from whichever side received it: said in our terms, naming the
 * request (or response) and both sizes, instead of grpc-js's wording (issue #8).
 */
function tooLargeMessage(err: ServiceError): { message: string; field: string } | undefined {
  if (err.code !== status.RESOURCE_EXHAUSTED) return undefined;
  const m = /^Received message larger than max \((\d+) vs (\d+)\)$/.exec(err.details ?? "");
  if (!m) return undefined;
  const [, size, limit] = m;
  if (Number(limit) === CLIENT_MAX_RECEIVE) {
    return {
      field: "response",
      message: `response: ${size} bytes is more than this client accepts (${limit})`,
    };
  }
  return {
    field: "request",
    message: `request: ${size} bytes is more than secretsd accepts (${limit})`,
  };
}
