/**
 * The redirect URI of a native app (RFC 8252 §7.3): a one-shot HTTP listener on 127.0.0.1 and
 * an ephemeral port, waiting for the browser to bring back the authorization response.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { CallbackParams } from "./code-flow.js";
import { OAuthError } from "./errors.js";

/** Options of {@link startLoopbackRedirect}. */
export interface LoopbackOptions {
  /** How long to wait for the browser; then `result` rejects `expired_token`. @default 300000 */
  timeoutMs?: number;
  /** The callback path; others answer 404. @default "/callback" */
  path?: string;
  /** Closes the listener; `result` then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** A listening redirect URI. */
export interface LoopbackRedirect {
  /** `http://127.0.0.1:PORT/callback`: the IP literal, never `localhost` (RFC 8252 §8.3). */
  redirectUri: string;
  /**
   * The first request to the path that carries `code` or `error`; pass it to `checkCallback`.
   * Rejects on timeout, abort or `close()` before it arrived.
   */
  result: Promise<CallbackParams>;
  /** Stops listening; safe to call twice. The listener also closes after the first result. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 port 0 (loopback only, never 0.0.0.0). The browser gets a short
 * plain page that never repeats the code; only the first valid callback counts.
 */
export async function startLoopbackRedirect(opts: LoopbackOptions = {}): Promise<LoopbackRedirect> {
  const path = opts.path ?? "/callback";
  const timeoutMs = opts.timeoutMs ?? 300_000;
  let settled = false;
  let resolve!: (params: CallbackParams) => void;
  let reject!: (err: unknown) => void;
  const result = new Promise<CallbackParams>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The caller may close without awaiting the result: that must not be an unhandled rejection.
  result.catch(() => {});

  const server = createServer((req, res) => {
    const params = callbackParams(req, path, res);
    if (params === undefined) return;
    // Only the first answer counts; a second one (a reload, a replay) gets a page, not a hang.
    if (settled) return page(res, 409, "This sign-in was already handled.");
    settled = true;
    res.on("close", () => void close());
    page(res, 200, params.error === undefined ? "Sign-in complete." : "Sign-in was not completed.");
    resolve(params);
  });

  const fail = (err: unknown) => {
    if (!settled) {
      settled = true;
      reject(err);
    }
    void close();
  };
  const timer = setTimeout(() => {
    fail(new OAuthError("expired_token", `no authorization response within ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => fail(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((done) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (!settled) {
        settled = true;
        reject(new DOMException("the loopback listener was closed", "AbortError"));
      }
      server.close(() => done());
      server.closeIdleConnections();
    });
    return closing;
  };

  await new Promise<void>((ok, bad) => {
    server.once("error", bad);
    server.listen(0, "127.0.0.1", () => ok());
  });
  if (opts.signal?.aborted) onAbort();
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("loopback: no port");
  return { redirectUri: `http://127.0.0.1:${address.port}${path}`, result, close };
}

// --- internal ---

/** The callback's parameters, or undefined after answering a request that is not one. */
function callbackParams(
  req: IncomingMessage,
  path: string,
  res: ServerResponse,
): CallbackParams | undefined {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (url.pathname !== path) return void page(res, 404, "Not found.");
  if (req.method !== "GET") return void page(res, 405, "Method not allowed.");
  const q = url.searchParams;
  const names = ["code", "state", "iss", "error", "error_description"] as const;
  // RFC 6749 §3.1: parameters must not repeat; such a request is not an answer.
  if (names.some((n) => q.getAll(n).length > 1) || (!q.has("code") && !q.has("error"))) {
    return void page(res, 400, "This is not an authorization response.");
  }
  const params: CallbackParams = {};
  for (const [name, key] of FIELDS) {
    const value = q.get(name);
    if (value !== null) params[key] = value;
  }
  return params;
}

const FIELDS = [
  ["code", "code"],
  ["state", "state"],
  ["iss", "iss"],
  ["error", "error"],
  ["error_description", "errorDescription"],
] as const;

function page(res: ServerResponse, status: number, headline: string): void {
  if (res.headersSent) return;
  const body = `<!doctype html><meta charset="utf-8"><title>vm-auth</title><p>${headline}</p><p>You may close this window.</p>\n`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'",
    connection: "close",
  });
  res.end(body);
}
