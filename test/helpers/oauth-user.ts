/**
 * Plays the user at a test provider (test/helpers/oauth-provider.ts) over plain HTTP: no
 * browser, just fetch with redirects followed by hand and a cookie jar that honours paths
 * (oidc-provider scopes `_interaction` to `/interaction/<uid>` and `_interaction_resume` to
 * `/auth/<uid>` or `/device/<uid>`). The forms are oidc-provider's dev interaction pages.
 */

/** Options of the user actions. */
export interface UserOptions {
  /** The account id typed at the login form; any id exists. @default "alice" */
  account?: string;
}

/** Enters `userCode` at the issuer's device page, logs in, consents: the device poll succeeds. */
export async function approveDevice(
  issuer: string,
  userCode: string,
  opts: UserOptions = {},
): Promise<void> {
  const page = await confirmDevice(new Browser(), issuer, userCode, "approve", opts);
  if (!/Sign-in Success/i.test(page.text)) throw new Error(`device approval ended at ${page.url}`);
}

/** Enters `userCode` and presses Abort: the next device poll gets `access_denied`. */
export async function denyDevice(issuer: string, userCode: string): Promise<void> {
  await confirmDevice(new Browser(), issuer, userCode, "deny", {});
}

/**
 * Opens `authorizationUrl`, logs in and consents; the provider's last redirect goes to the
 * client's redirect URI (the daemon's loopback listener), which is fetched like a browser
 * would. Returns that request's status.
 */
export async function authorizeInBrowser(
  authorizationUrl: string,
  opts: UserOptions = {},
): Promise<number> {
  const browser = new Browser();
  const origin = new URL(authorizationUrl).origin;
  let page = await browser.open(authorizationUrl, undefined, origin);
  for (let step = 0; step < 10; step++) {
    if (page.offsite) return (await fetch(page.url, { redirect: "manual" })).status;
    page = await browser.submitInteraction(page, opts, origin);
  }
  throw new Error("authorization did not reach the redirect URI in 10 steps");
}

// --- internal ---

interface Page {
  url: string;
  status: number;
  text: string;
  /** The page is a redirect target on another origin (not fetched). */
  offsite: boolean;
}

async function confirmDevice(
  browser: Browser,
  issuer: string,
  userCode: string,
  choice: "approve" | "deny",
  opts: UserOptions,
): Promise<Page> {
  const origin = new URL(issuer).origin;
  const entry = await browser.open(`${issuer}/device`, undefined, origin);
  const input = form(entry, "op.deviceInputForm");
  const confirm = await browser.open(
    input.action,
    { ...input.fields, user_code: userCode },
    origin,
  );
  const fields = form(confirm, "op.deviceConfirmForm");
  // The Abort button submits the same form with abort=yes added.
  const extra = choice === "deny" ? { abort: "yes" } : {};
  let page = await browser.open(fields.action, { ...fields.fields, ...extra }, origin);
  for (let step = 0; step < 10 && /name="prompt"/.test(page.text); step++) {
    page = await browser.submitInteraction(page, opts, origin);
  }
  return page;
}

class Browser {
  /** name and path → value; one cookie per (name, path) as RFC 6265 §5.3 step 11. */
  private readonly jar = new Map<string, { name: string; path: string; value: string }>();

  /** GETs `url` (or POSTs `body` as a form) and follows redirects within `origin`. */
  async open(url: string, body: Record<string, string> | undefined, origin: string): Promise<Page> {
    let target = url;
    let init: RequestInit | undefined = body
      ? {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(body).toString(),
        }
      : undefined;
    for (let hop = 0; hop < 20; hop++) {
      if (new URL(target).origin !== origin)
        return { url: target, status: 0, text: "", offsite: true };
      const res = await this.fetch(target, init);
      const location = res.headers.get("location");
      if (res.status < 300 || res.status > 399 || location === null) {
        return { url: target, status: res.status, text: await res.text(), offsite: false };
      }
      await res.body?.cancel();
      target = new URL(location, target).href;
      init = undefined;
    }
    throw new Error("too many redirects");
  }

  /** Submits the login or consent form on `page`. */
  async submitInteraction(page: Page, opts: UserOptions, origin: string): Promise<Page> {
    const f = form(page, undefined);
    const prompt = f.fields.prompt;
    if (prompt === "login") {
      const login = { ...f.fields, login: opts.account ?? "alice", password: "any" };
      return this.open(f.action, login, origin);
    }
    if (prompt === "consent") return this.open(f.action, f.fields, origin);
    throw new Error(`no login or consent form at ${page.url} (HTTP ${page.status})`);
  }

  private async fetch(url: string, init: RequestInit | undefined): Promise<Response> {
    const { pathname } = new URL(url);
    const cookie = [...this.jar.values()]
      .filter((c) => pathMatches(pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
    const headers = new Headers(init?.headers);
    if (cookie) headers.set("cookie", cookie);
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    // In order: a response may clear a cookie and set it again.
    for (const line of res.headers.getSetCookie()) this.setCookie(line, pathname);
    return res;
  }

  private setCookie(line: string, requestPath: string): void {
    const [pair = "", ...attrs] = line.split(";").map((p) => p.trim());
    const eq = pair.indexOf("=");
    if (eq <= 0) return;
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = defaultPath(requestPath);
    let expired = false;
    for (const attr of attrs) {
      const [k = "", v = ""] = attr.split("=", 2);
      const key = k.toLowerCase();
      if (key === "path" && v.startsWith("/")) path = v;
      if (key === "max-age" && Number(v) <= 0) expired = true;
      if (key === "expires" && Date.parse(v) <= Date.now()) expired = true;
    }
    const id = `${name};${path}`;
    if (expired) this.jar.delete(id);
    else this.jar.set(id, { name, path, value });
  }
}

/** The form with `id` (or the first form) on `page`: its action and its input values. */
function form(
  page: Page,
  id: string | undefined,
): { action: string; fields: Record<string, string> } {
  const forms = [...page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  const match = forms.find((m) => id === undefined || attr(m[1] ?? "", "id") === id);
  if (!match) throw new Error(`no form ${id ?? ""} at ${page.url} (HTTP ${page.status})`);
  const fields: Record<string, string> = {};
  for (const input of (match[2] ?? "").matchAll(/<input\b([^>]*)>/g)) {
    const name = attr(input[1] ?? "", "name");
    if (name !== undefined) fields[name] = attr(input[1] ?? "", "value") ?? "";
  }
  return { action: new URL(attr(match[1] ?? "", "action") ?? "", page.url).href, fields };
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(tag);
  return m?.[1] === undefined ? undefined : decodeEntities(m[1]);
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** RFC 6265 §5.1.4. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const slash = requestPath.lastIndexOf("/");
  return slash <= 0 ? "/" : requestPath.slice(0, slash);
}
