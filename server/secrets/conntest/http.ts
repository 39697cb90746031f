/**
 * The HTTP connection test: one request with the secret where the template says, "works"
 * when the status is one of the ok statuses. The secret goes only to the origin it was meant
 * for: redirects are followed by hand, within that origin; one to another origin is reported,
 * not followed. https is required except to loopback (common/net.ts, the project's one rule
 * for plaintext). The response body is never read: a server may echo the token in it.
 *
 * node:http/https rather than fetch: node's fetch takes no CA and cannot skip certificate
 * checks without the undici package's Agent, and a self-hosted endpoint (Proxmox, a private
 * CA) needs both: `ca` from the options, `insecureField` from the template.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isLoopbackHost } from "../../../common/net.js";
import { invalidArgument } from "../../errors.js";
import { hostPort, oneLine, type PreparedTest, TestFailure } from "./outcome.js";
import type { ConnectionTestOptions, Credential, HttpTestSpec } from "./types.js";

const MAX_REDIRECTS = 5;

interface HttpPlan {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  ok: readonly number[];
  tls: { ca?: string; rejectUnauthorized: boolean };
}

/** Checks the spec and credential and builds the request; throws SecretsError invalid_argument. */
export function prepareHttpTest(
  spec: HttpTestSpec,
  credential: Credential,
  opts: Pick<ConnectionTestOptions, "baseUrlOverride" | "ca">,
): PreparedTest {
  const secrets: string[] = [];
  // Values in the base URL and path are non-secret fields (host, region, tenant).
  const url = joinPath(baseUrl(spec, credential, opts.baseUrlOverride), spec.path, credential);
  const method = spec.method.toUpperCase();
  if (!/^[A-Z]+$/.test(method)) {
    throw invalidArgument("test.method", `'${spec.method}' is not an HTTP method`);
  }
  const ok = spec.okStatus ?? spec.okStatuses ?? [];
  if (ok.length === 0) throw invalidArgument("test.okStatus", "is empty");
  const headers: Record<string, string> = { "user-agent": "vm-auth-conntest" };
  for (const [name, tpl] of Object.entries(spec.headers ?? {})) {
    setHeader(headers, name, fill(tpl, credential, `test.headers.${name}`, secrets), name);
  }
  const auth = spec.auth;
  if (auth.type === "header") {
    const tpl = auth.value ?? auth.template;
    if (tpl === undefined) throw invalidArgument("test.auth.value", "is missing");
    setHeader(headers, auth.name, fill(tpl, credential, "test.auth.value", secrets), "auth");
  } else if (auth.type === "query") {
    const tpl = auth.value ?? (auth.field === undefined ? undefined : `{${auth.field}}`);
    if (tpl === undefined) throw invalidArgument("test.auth.value", "is missing");
    url.searchParams.set(auth.name, fill(tpl, credential, "test.auth.value", secrets));
  } else if (auth.type === "basic") {
    const user = fill(`{${auth.userField}}`, credential, "test.auth.userField", []);
    const password = fill(
      `{${auth.passwordField}}`,
      credential,
      "test.auth.passwordField",
      secrets,
    );
    const basic = Buffer.from(`${user}:${password}`, "utf8").toString("base64");
    headers.authorization = `Basic ${basic}`;
    secrets.push(basic);
  }
  let body: string | undefined;
  if (spec.form !== undefined) {
    const form = new URLSearchParams();
    for (const [k, tpl] of Object.entries(spec.form)) {
      form.set(k, fill(tpl, credential, `test.form.${k}`, secrets));
    }
    body = form.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  const insecure = spec.insecureField !== undefined && credential[spec.insecureField] === "true";
  const plan: HttpPlan = {
    url,
    method,
    headers,
    body,
    ok,
    tls: { ...(opts.ca === undefined ? {} : { ca: opts.ca }), rejectUnauthorized: !insecure },
  };
  const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
  return { target: hostPort(url.hostname, port), secrets, run: (signal) => exchange(plan, signal) };
}

// --- internal ---

async function exchange(plan: HttpPlan, signal: AbortSignal): Promise<string> {
  const first = plan.url;
  let { url, method, body } = plan;
  for (let hop = 0; ; hop++) {
    const res = await send(plan, url, method, body, signal);
    const server = typeof res.headers.server === "string" ? res.headers.server : undefined;
    const status = `HTTP ${res.status}${server ? ` (server: ${oneLine(server, 60)})` : ""}`;
    if (plan.ok.includes(res.status)) return status;
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && location !== undefined) {
      const next = new URL(location, url);
      if (next.origin !== first.origin) {
        throw new TestFailure(
          `${status}: redirect to ${next.origin} not followed (the credential goes only to ${first.origin})`,
        );
      }
      if (hop >= MAX_REDIRECTS) {
        throw new TestFailure(`${status}: more than ${MAX_REDIRECTS} redirects`);
      }
      // A query-string secret rides along only if the redirect kept it; re-apply it.
      for (const [k, v] of first.searchParams) {
        if (!next.searchParams.has(k)) next.searchParams.set(k, v);
      }
      // 301/302/303 turn a POST into a GET without body (as browsers do); 307/308 keep both.
      if (res.status !== 307 && res.status !== 308 && method === "POST") {
        method = "GET";
        body = undefined;
      }
      url = next;
      continue;
    }
    if (res.status === 401 || res.status === 403) {
      throw new TestFailure(`${status}: authentication failed`);
    }
    throw new TestFailure(status);
  }
}

/** One request; resolves with the status and headers, the body left unread and the socket closed. */
function send(
  plan: HttpPlan,
  url: URL,
  method: string,
  body: string | undefined,
  signal: AbortSignal,
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const headers = { ...plan.headers };
  if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const common = { method, headers, signal, agent: false } as const;
    const onResponse = (res: IncomingMessage) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.destroy();
    };
    const req =
      url.protocol === "https:"
        ? httpsRequest(url, { ...common, ...plan.tls }, onResponse)
        : httpRequest(url, common, onResponse);
    req.on("error", reject);
    req.end(body);
  });
}

/** The base URL: the override, else the spec's, with `{key}`s filled; https or loopback. */
function baseUrl(spec: HttpTestSpec, credential: Credential, override: string | undefined): URL {
  const key = override === undefined ? "test.baseUrl" : "baseUrlOverride";
  const raw = override ?? spec.baseUrl;
  if (raw === undefined || raw === "") {
    throw invalidArgument(
      "baseUrlOverride",
      "the template has no base URL; give one for this credential",
    );
  }
  let url: URL;
  try {
    url = new URL(fill(raw, credential, key, []));
  } catch (err) {
    if (err instanceof Error && err.name === "SecretsError") throw err;
    throw invalidArgument(key, `'${raw}' is not an absolute URL`);
  }
  if (url.username !== "" || url.password !== "") {
    throw invalidArgument(
      key,
      "must not hold a user or password; the template says where the secret goes",
    );
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw invalidArgument(key, `${url.origin} is plain http; only https, or http to loopback`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(key, `'${url.protocol}' is not http or https`);
  }
  return url;
}

function joinPath(base: URL, path: string, credential: Credential): URL {
  // A value in the path is percent-encoded but keeps its slashes (the catalogue's rule).
  const filled = fill(path, credential, "test.path", [], (v) =>
    encodeURIComponent(v).replace(/%2F/gi, "/"),
  );
  const url = new URL(base.href);
  const q = filled.indexOf("?");
  const p = q < 0 ? filled : filled.slice(0, q);
  url.pathname = `${base.pathname.replace(/\/+$/, "")}/${p.replace(/^\/+/, "")}`;
  if (q >= 0) url.search = filled.slice(q + 1);
  return url;
}

/**
 * `tpl` with each `{key}` replaced by that credential field (through `encode`), `{{` and `}}`
 * as braces; each value used is added to `secrets`. Throws naming a missing field or a stray
 * brace, never a value.
 */
function fill(
  tpl: string,
  credential: Credential,
  where: string,
  secrets: string[],
  encode: (v: string) => string = (v) => v,
): string {
  let out = "";
  for (let i = 0; i < tpl.length; i++) {
    const c = tpl[i];
    if ((c === "{" || c === "}") && tpl[i + 1] === c) {
      out += c;
      i++;
    } else if (c === "{") {
      const end = tpl.indexOf("}", i);
      const key = end < 0 ? "" : tpl.slice(i + 1, end);
      if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
        throw invalidArgument(
          where,
          "has a '{' that does not start a {field} (write {{ for a brace)",
        );
      }
      const value = credential[key];
      if (value === undefined || value === "") {
        throw invalidArgument(`credential.${key}`, `is required by ${where}`);
      }
      secrets.push(value);
      out += encode(value);
      i = end;
    } else if (c === "}") {
      throw invalidArgument(where, "has a '}' that closes nothing (write }} for a brace)");
    } else {
      out += c;
    }
  }
  return out;
}

function setHeader(headers: Record<string, string>, name: string, value: string, what: string) {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(name)) {
    throw invalidArgument(
      `test.${what === "auth" ? "auth.name" : "headers"}`,
      `'${name}' is not an HTTP header name`,
    );
  }
  // node's own error for a bad header value quotes the value; refuse it first.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw invalidArgument(
      `test.${what === "auth" ? "auth.value" : `headers.${name}`}`,
      "holds a control character once filled; it cannot go in an HTTP header",
    );
  }
  headers[name.toLowerCase()] = value;
}
