/**
 * How a connection test turns what happened into one safe line. Runners throw `TestFailure`
 * for an answer that means "does not work" (a 401, a rejected AUTH); anything else thrown is
 * a network or TLS error that `describeError` names by its code and the target. Every detail
 * passes through `scrub` with the secrets the test sent, so a server echoing a token back, or
 * an error message quoting one, still never puts it in a result (issue #13: "never the value").
 */

/** A test that reached the server and got a "no": `detail` is already safe to show. */
export class TestFailure extends Error {
  override readonly name = "TestFailure";
  constructor(readonly detail: string) {
    super(detail);
  }
}

/** What each kind's runner gives run.ts once its inputs are checked. */
export interface PreparedTest {
  /** host:port the test talks to, for "connection refused at …". */
  target: string;
  /** Every secret string the test puts on the wire (and its encoded forms), for `scrub`. */
  secrets: string[];
  /** Runs the test; resolves with a success detail; rejects on failure or when `signal` aborts. */
  run(signal: AbortSignal): Promise<string>;
}

/**
 * One line naming why a connection failed: refused, reset, unknown host, TLS, by error code.
 * Never the error's free text for codes it knows; for others the message, cut to one line.
 */
export function describeError(err: unknown, target: string): string {
  const code = errorCode(err);
  switch (code) {
    case "ECONNREFUSED":
      return `connection refused at ${target}`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return `host not found: ${target}`;
    case "ECONNRESET":
    case "EPIPE":
      return `connection reset by ${target}`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `host unreachable: ${target}`;
    case "ETIMEDOUT":
      return `timed out connecting to ${target}`;
  }
  if (code !== undefined && TLS_CODE.test(code)) return `TLS failed at ${target}: ${code}`;
  const message = err instanceof Error ? innermost(err).message : String(err);
  return oneLine(`failed at ${target}: ${code ? `${code} ` : ""}${message}`, 200);
}

/** `text` with every secret (≥ 3 characters, and its URL-encoded form) replaced by `***`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  const forms = secrets
    .filter((s) => s.length >= 3)
    .flatMap((s) => [s, encodeURIComponent(s)])
    // Longest first, so a secret containing another is replaced whole.
    .sort((a, b) => b.length - a.length);
  for (const s of forms) out = out.split(s).join("***");
  return out;
}

/** Server text made one printable line of at most `max` characters. */
export function oneLine(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** `host:port`, with brackets for an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A test's view of a credential through the spec's `fields` map (role → credential field):
 * `get(role)` is that field's value ("" when absent), `key(role)` the name errors give. With no
 * map, each role is the field of its name; with one, an unmapped role has no value.
 */
export function fieldView(
  credential: Readonly<Record<string, string>>,
  fields: Readonly<Record<string, string | undefined>> | undefined,
): { get(role: string): string; key(role: string): string } {
  const name = (role: string) => (fields === undefined ? role : fields[role]);
  return {
    get: (role) => {
      const n = name(role);
      return n === undefined ? "" : (credential[n] ?? "");
    },
    key: (role) => `credential.${name(role) ?? role}`,
  };
}

/** A promise that rejects with the signal's reason when it aborts (for racing a runner). */
export function abortPromise(signal: AbortSignal): { promise: Promise<never>; dispose(): void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  // The race may settle first; a later abort must not be an unhandled rejection.
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener("abort", onAbort) };
}

// --- internal ---

// OpenSSL and node TLS verification codes: CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT,
// ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_WRONG_VERSION_NUMBER, UNABLE_TO_VERIFY_LEAF_SIGNATURE…
const TLS_CODE = /CERT|SSL|TLS|UNABLE_TO_|SELF_SIGNED/;

/** fetch wraps the socket error as `cause`: the code is on the innermost error. */
function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code !== "UND_ERR_SOCKET") return code;
    e = e.cause;
  }
  return undefined;
}

function innermost(err: Error): Error {
  let e = err;
  for (let i = 0; i < 5 && e.cause instanceof Error; i++) e = e.cause;
  return e;
}
