/**
 * runConnectionTest: does this credential work? One bounded attempt from the host, in the
 * template's way (HTTP request, PostgreSQL `SELECT 1`, SMTP AUTH), reported as ok, time and
 * one safe line (issue #13, "Connection tests"). The one entry point of server/secrets/conntest.
 *
 * Two kinds of "no": a spec or credential that cannot be tested (a missing field, plain http to
 * a remote host) throws SecretsError invalid_argument naming the field, and nothing is sent; a
 * test that ran and failed (refused, 401, wrong password, timed out) resolves with ok: false.
 * The caller's signal aborting rejects with its reason, so a cancelled RPC stays cancelled.
 */
import { invalidArgument } from "../../errors.js";
import { prepareHttpTest } from "./http.js";
import { describeError, type PreparedTest, scrub, TestFailure } from "./outcome.js";
import { preparePostgresTest } from "./postgres.js";
import { prepareSmtpTest } from "./smtp.js";
import type {
  ConnectionTestOptions,
  ConnectionTestResult,
  ConnectionTestSpec,
  Credential,
} from "./types.js";

export type * from "./types.js";

/** Longest timeout a caller may ask for: a test holds a socket and an RPC. */
export const MAX_TIMEOUT_MS = 120_000;

/**
 * Runs `spec` with `credential` within `opts.timeoutMs`. Throws SecretsError invalid_argument
 * (before any connection) for an untestable spec or credential; rejects with the signal's
 * reason when `opts.signal` aborts; otherwise resolves, ok or not. `detail` never holds a
 * secret the test sent, even when the server echoes it.
 */
export async function runConnectionTest(
  spec: ConnectionTestSpec,
  credential: Credential,
  opts: ConnectionTestOptions,
): Promise<ConnectionTestResult> {
  const { timeoutMs } = opts;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw invalidArgument(
      "timeoutMs",
      `${timeoutMs} is not a whole number of ms in 1-${MAX_TIMEOUT_MS}`,
    );
  }
  opts.signal.throwIfAborted();
  const test = prepare(spec, credential, opts);
  const checkedAt = new Date().toISOString();
  const start = performance.now();
  const timeout = AbortSignal.timeout(timeoutMs);
  let ok = false;
  let detail: string;
  try {
    detail = await test.run(AbortSignal.any([opts.signal, timeout]));
    ok = true;
  } catch (err) {
    if (opts.signal.aborted) throw opts.signal.reason;
    if (timeout.aborted) detail = `timed out after ${timeoutMs} ms`;
    else if (err instanceof TestFailure) detail = err.detail;
    else detail = describeError(err, test.target);
  }
  const ms = Math.round(performance.now() - start);
  return { ok, ms, detail: scrub(detail, test.secrets), checkedAt };
}

// --- internal ---

function prepare(
  spec: ConnectionTestSpec,
  credential: Credential,
  opts: ConnectionTestOptions,
): PreparedTest {
  if (opts.baseUrlOverride !== undefined && spec.kind !== "http") {
    throw invalidArgument("baseUrlOverride", `a ${spec.kind} test has no base URL`);
  }
  switch (spec.kind) {
    case "http":
      return prepareHttpTest(spec, credential, opts);
    case "postgres":
      return preparePostgresTest(spec, credential, opts);
    case "smtp":
      return prepareSmtpTest(spec, credential, opts);
    default:
      throw invalidArgument(
        "test.kind",
        `'${(spec as { kind: unknown }).kind}' is not http, postgres or smtp`,
      );
  }
}
