/**
 * The SMTP connection test: connect, EHLO, STARTTLS when asked, AUTH PLAIN (else LOGIN), QUIT.
 * A small client of our own over node:net and node:tls: the test needs five commands, not a
 * mail library. TLS is verified (the system CAs, or the options' `ca`); a password goes in
 * plaintext (`security: none`) only to loopback. Bytes the server sends ahead of the TLS
 * handshake after STARTTLS fail the test: they would be read as if protected (CVE-2011-0411).
 */
import { isIP, connect as netConnect, type Socket } from "node:net";
import { hostname } from "node:os";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { isLoopbackHost } from "../../../common/net.js";
import { invalidArgument } from "../../errors.js";
import {
  abortPromise,
  fieldView,
  hostPort,
  oneLine,
  type PreparedTest,
  TestFailure,
} from "./outcome.js";
import type { ConnectionTestOptions, Credential, SmtpTestSpec } from "./types.js";

type Security = "starttls" | "tls" | "none";
const DEFAULT_PORT: Record<Security, number> = { starttls: 587, tls: 465, none: 25 };

interface SmtpTarget {
  host: string;
  port: number;
  security: Security;
  user: string | undefined;
  password: string | undefined;
}

/** Checks the credential's fields; throws SecretsError invalid_argument naming one. */
export function prepareSmtpTest(
  spec: SmtpTestSpec,
  credential: Credential,
  opts: Pick<ConnectionTestOptions, "ca">,
): PreparedTest {
  const t = target(fieldView(credential, spec.fields));
  const secrets: string[] = [];
  if (t.password !== undefined) {
    secrets.push(t.password, b64(t.password), b64(`\0${t.user ?? ""}\0${t.password}`));
  }
  return {
    target: hostPort(t.host, t.port),
    secrets,
    run: (signal) => session(t, opts.ca, signal),
  };
}

// --- internal ---

async function session(t: SmtpTarget, ca: string | undefined, signal: AbortSignal) {
  const tlsOpts = { ca, servername: isIP(t.host) ? undefined : t.host };
  const socket =
    t.security === "tls"
      ? tlsConnect({ host: t.host, port: t.port, ...defined(tlsOpts) })
      : netConnect({ host: t.host, port: t.port });
  const conn = new Replies(socket);
  const aborted = abortPromise(signal);
  const step = <T>(p: Promise<T>) => Promise.race([p, aborted.promise]);
  try {
    const greeting = await step(conn.expect(220, "greeting"));
    const banner = oneLine(greeting.text.split("\n")[0] ?? "", 80);
    const me = hostname() || "localhost";
    let caps = await step(conn.command(`EHLO ${me}`, 250, "EHLO"));
    if (t.security === "starttls") {
      if (!caps.lines.some((l) => /^STARTTLS\b/i.test(l))) {
        throw new TestFailure(`server does not offer STARTTLS (banner: ${banner})`);
      }
      await step(conn.command("STARTTLS", 220, "STARTTLS"));
      const secure = tlsConnect({ socket: conn.detach(), ...defined(tlsOpts) });
      // No wait for secureConnect: EHLO is written once the handshake is done, and a failed
      // handshake (an unverified certificate) fails the reply read with its TLS error code.
      conn.attach(secure);
      caps = await step(conn.command(`EHLO ${me}`, 250, "EHLO"));
    }
    let how = "no AUTH (no password)";
    if (t.password !== undefined) how = await step(authenticate(conn, caps.lines, t));
    await step(conn.command("QUIT", 221, "QUIT")).catch(() => {});
    return `${how}; banner: ${banner}`;
  } finally {
    aborted.dispose();
    conn.close();
  }
}

async function authenticate(conn: Replies, caps: string[], t: SmtpTarget): Promise<string> {
  const auth =
    caps
      .find((l) => /^AUTH[ =]/i.test(l))
      ?.toUpperCase()
      .split(/[ =]/) ?? [];
  const user = t.user ?? "";
  const password = t.password ?? "";
  let reply: Reply;
  let mech: string;
  if (auth.includes("PLAIN")) {
    mech = "PLAIN";
    reply = await conn.command(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`);
  } else if (auth.includes("LOGIN")) {
    mech = "LOGIN";
    await conn.command("AUTH LOGIN", 334, "AUTH LOGIN");
    await conn.command(b64(user), 334, "AUTH LOGIN user");
    reply = await conn.command(b64(password));
  } else {
    throw new TestFailure(
      `server offers no AUTH PLAIN or LOGIN (${auth.slice(1).join(" ") || "no AUTH"})`,
    );
  }
  if (reply.code === 235) return `authenticated with AUTH ${mech} (235)`;
  const text = oneLine(reply.text, 100);
  if (reply.code === 535 || reply.code === 534 || reply.code === 530) {
    throw new TestFailure(`authentication failed (${reply.code} ${text})`);
  }
  throw new TestFailure(`AUTH ${mech} answered ${reply.code} ${text}`);
}

interface Reply {
  code: number;
  /** The reply's lines without their codes, joined by "\n". */
  text: string;
  lines: string[];
}

/** SMTP replies read off a socket that can be swapped for its TLS wrapping. */
class Replies {
  private buf = "";
  private readonly partial: string[] = [];
  private replies: Reply[] = [];
  private waiter: ((r: Reply | Error) => void) | undefined;
  private failure: Error | undefined;
  private socket!: Socket | TLSSocket;
  private readonly onData = (chunk: Buffer) => this.read(chunk.toString("latin1"));
  private readonly onError = (err: Error) => this.fail(err);
  private readonly onClose = () => this.fail(new TestFailure("the server closed the connection"));

  constructor(socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.on("data", this.onData).on("error", this.onError).on("close", this.onClose);
  }

  /** Stops reading `socket` (to wrap it in TLS); fails if the server sent ahead. */
  detach(): Socket {
    this.socket.off("data", this.onData).off("error", this.onError).off("close", this.onClose);
    if (this.buf !== "" || this.partial.length > 0 || this.replies.length > 0) {
      throw new TestFailure("the server sent data before the TLS handshake (STARTTLS injection)");
    }
    return this.socket as Socket;
  }

  async command(line: string, want?: number, what?: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return want === undefined ? this.next() : this.expect(want, what ?? line);
  }

  async expect(want: number, what: string): Promise<Reply> {
    const r = await this.next();
    if (r.code !== want)
      throw new TestFailure(`${what} answered ${r.code} ${oneLine(r.text, 100)}`);
    return r;
  }

  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = (x) => (x instanceof Error ? reject(x) : resolve(x));
    });
  }

  private read(text: string): void {
    this.buf += text;
    if (this.buf.length > 64 * 1024) {
      this.fail(new TestFailure("reply longer than 64 KiB"));
      return;
    }
    // A multi-line reply may span chunks: its lines so far stay in this.partial.
    const lines = this.partial;
    for (let i = this.buf.indexOf("\n"); i >= 0; i = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, i).replace(/\r$/, "");
      this.buf = this.buf.slice(i + 1);
      lines.push(line);
      const m = /^(\d{3})([ -])(.*)$/.exec(line);
      if (!m) {
        this.fail(new TestFailure(`not an SMTP reply: ${oneLine(line, 60)}`));
        return;
      }
      if (m[2] === " ") {
        const parts = lines.splice(0).map((l) => l.slice(4));
        this.push({ code: Number(m[1]), text: parts.join("\n"), lines: parts });
      }
    }
  }

  private push(r: Reply): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w(r);
    else this.replies.push(r);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(this.failure);
  }
}

function target(f: ReturnType<typeof fieldView>): SmtpTarget {
  const host = f.get("host");
  if (host === "") throw invalidArgument(f.key("host"), "is required");
  const raw = f.get("security");
  const security = (raw || "starttls") as Security;
  if (!Object.hasOwn(DEFAULT_PORT, security)) {
    throw invalidArgument(f.key("security"), `'${raw}' is not starttls, tls or none`);
  }
  let port = DEFAULT_PORT[security];
  const rawPort = f.get("port");
  if (rawPort !== "") {
    port = Number(rawPort);
    if (!/^\d+$/.test(rawPort) || port < 1 || port > 65535) {
      throw invalidArgument(f.key("port"), `'${rawPort}' is not 1-65535`);
    }
  }
  const password = f.get("password") || undefined;
  if (password !== undefined && security === "none" && !isLoopbackHost(host)) {
    throw invalidArgument(
      f.key("security"),
      `none would send the password in plaintext to ${host}; use starttls or tls (plaintext only to loopback)`,
    );
  }
  return { host, port, security, user: f.get("user") || undefined, password };
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

/** exactOptionalPropertyTypes: leave out the keys whose value is undefined. */
function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
