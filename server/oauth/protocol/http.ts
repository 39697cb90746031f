/**
 * The one place that talks HTTP to a provider: form POSTs and JSON GETs with a timeout, no
 * redirects, a 64 KiB body cap, JSON or form-encoded bodies, and the classification of error
 * responses into {@link OAuthError}. Internal to this folder (index.ts does not export it).
 */
import { cleanDescription, kindOfErrorCode, OAuthError } from "./errors.js";
import type {
  ClientAuthMethod,
  ClientCredentials,
  HttpOptions,
  ProviderEndpoints,
} from "./types.js";

/** Largest response body read; a token response is a few KiB at most. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A response with its body parsed as JSON or form data (`undefined` when neither). */
export interface ParsedResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}

/**
 * POSTs `form` to `url` with `Accept: application/json`. Rejects with a `transient`
 * OAuthError on network failure or timeout, `protocol` on a redirect or an oversized body, and
 * with `opts.signal.reason` when the caller aborts. HTTP errors are returned, not thrown: see
 * {@link errorFromResponse}. `what` names the request in messages ("token request").
 */
export async function postForm(
  url: string,
  form: URLSearchParams,
  what: string,
  opts: HttpOptions,
  headers: Record<string, string> = {},
): Promise<ParsedResponse> {
  return send(url, what, opts, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
      accept: "application/json",
      ...headers,
    },
    body: form.toString(),
  });
}

/** GETs `url` expecting JSON; same rejections as {@link postForm}. */
export async function getJson(
  url: string,
  what: string,
  opts: HttpOptions,
): Promise<ParsedResponse> {
  return send(url, what, opts, { method: "GET", headers: { accept: "application/json" } });
}

/**
 * The error a response stands for, or `undefined` when it is a usable success. Any body with
 * an `error` field is an error whatever the status (GitHub answers errors with 200); 5xx and
 * 429 are always `transient`; a 401 without a code is `invalid_client`.
 */
export function errorFromResponse(res: ParsedResponse, what: string): OAuthError | undefined {
  const { status, body } = res;
  const busy = status >= 500 || status === 429;
  const code = typeof body?.error === "string" ? body.error : undefined;
  const retry = busy ? retryAfterMs(res.headers.get("retry-after")) : undefined;
  const opts = { status, ...(retry === undefined ? {} : { retryAfterMs: retry }) };
  if (code !== undefined) {
    const description = cleanDescription(body?.error_description);
    const message = `${what} failed: ${safeCode(code)}${description ? ` (${description})` : ""}`;
    return new OAuthError(busy ? "transient" : kindOfErrorCode(code), message, {
      ...opts,
      oauthError: code,
    });
  }
  if (busy) return new OAuthError("transient", `${what} failed: HTTP ${status}`, opts);
  if (status === 401) return new OAuthError("invalid_client", `${what} failed: HTTP 401`, opts);
  if (status < 200 || status > 299) {
    return new OAuthError("protocol", `${what} failed: HTTP ${status}`, opts);
  }
  if (body === undefined) {
    return new OAuthError("protocol", `${what}: the response is neither JSON nor form data`, opts);
  }
  return undefined;
}

/** The body of a successful response; throws {@link errorFromResponse}'s error otherwise. */
export function expectOk(res: ParsedResponse, what: string): Record<string, unknown> {
  const err = errorFromResponse(res, what);
  if (err || res.body === undefined) throw err;
  return res.body;
}

/**
 * The auth method for `client`: a quirk wins; a secret means `client_secret_basic` unless
 * discovery lists only `client_secret_post`; no secret means a public client (`none`).
 */
export function chooseAuthMethod(
  client: ClientCredentials,
  endpoints: ProviderEndpoints,
  forced?: ClientAuthMethod,
): ClientAuthMethod {
  if (forced !== undefined) return client.clientSecret === undefined ? "none" : forced;
  if (client.clientSecret === undefined) return "none";
  const listed = endpoints.tokenAuthMethods;
  if (listed && !listed.includes("client_secret_basic") && listed.includes("client_secret_post")) {
    return "client_secret_post";
  }
  return "client_secret_basic";
}

/**
 * Adds the client's credentials to `form` or returns them as headers. RFC 6749 §2.3.1: for
 * Basic, the id and secret are form-urlencoded before base64, so a `:` in either survives.
 */
export function clientAuth(
  form: URLSearchParams,
  client: ClientCredentials,
  method: ClientAuthMethod,
): Record<string, string> {
  const secret = client.clientSecret;
  if (method === "client_secret_basic" && secret !== undefined) {
    const pair = `${formEncode(client.clientId)}:${formEncode(secret)}`;
    return { authorization: `Basic ${Buffer.from(pair).toString("base64")}` };
  }
  form.set("client_id", client.clientId);
  if (method === "client_secret_post" && secret !== undefined) form.set("client_secret", secret);
  return {};
}

/** `Retry-After` as milliseconds: delay-seconds or an HTTP date; capped at a day. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  if (Number.isNaN(ms)) return undefined;
  return Math.min(Math.max(ms, 0), DAY_MS);
}

// --- internal ---

const DAY_MS = 24 * 60 * 60 * 1000;

async function send(
  url: string,
  what: string,
  opts: HttpOptions,
  init: RequestInit,
): Promise<ParsedResponse> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    // redirect "manual": a token endpoint that redirects would have us resend the grant (and
    // the client secret) to wherever it points.
    const res = await (opts.fetch ?? fetch)(url, { ...init, redirect: "manual", signal });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      throw new OAuthError("protocol", `${what}: refused a redirect (HTTP ${res.status})`, {
        status: res.status,
      });
    }
    const text = await readCapped(res, what);
    return { status: res.status, headers: res.headers, body: parse(text, res.headers) };
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (timeout.aborted) {
      throw new OAuthError("transient", `${what}: no answer within ${timeoutMs} ms`);
    }
    throw new OAuthError("transient", `${what}: network error`, { cause: err });
  }
}

async function readCapped(res: Response, what: string): Promise<string> {
  const tooLarge = () =>
    new OAuthError("protocol", `${what}: response larger than ${MAX_BODY_BYTES} bytes`, {
      status: res.status,
    });
  if (Number(res.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parse(text: string, headers: Headers): Record<string, unknown> | undefined {
  const type = headers.get("content-type") ?? "";
  if (type.includes("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  // Some providers label JSON as text/plain or text/html: try it whatever the type says.
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {}
  return undefined;
}

function formEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

/** An error code goes into messages: keep it to the RFC 6749 §5.2 character set and short. */
function safeCode(code: string): string {
  return /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(code) ? code : "(malformed error code)";
}
