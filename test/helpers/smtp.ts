/**
 * A real SMTP server on loopback for connection tests: nodemailer's `smtp-server` with AUTH
 * for one user. `starttls` offers STARTTLS and (the package's default) refuses AUTH before
 * it; `tls` is TLS from the first byte; `none` has no TLS and allows AUTH in the clear. The
 * certificate is a fresh self-signed one for 127.0.0.1 and localhost (openssl). Each AUTH
 * attempt is recorded (method, user, accepted, over TLS): never the password.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { makeSelfSignedCert } from "./tls.js";

export interface SmtpAuthAttempt {
  method: string;
  user: string;
  accepted: boolean;
  secure: boolean;
}

export interface TestSmtpServer {
  host: "127.0.0.1";
  port: number;
  /** The self-signed certificate (PEM) the server presents, to trust as `ca`. */
  cert: string;
  attempts: SmtpAuthAttempt[];
  close(): Promise<void>;
}

/** Starts the server; `authMethods` defaults to PLAIN and LOGIN. */
export async function startSmtpServer(opts: {
  security: "starttls" | "tls" | "none";
  user: string;
  password: string;
  authMethods?: string[];
}): Promise<TestSmtpServer> {
  const { cert, key } = selfSigned();
  const attempts: SmtpAuthAttempt[] = [];
  const server = new SMTPServer({
    secure: opts.security === "tls",
    key,
    cert,
    name: "smtp.test",
    banner: "vm-auth test SMTP",
    authMethods: opts.authMethods ?? ["PLAIN", "LOGIN"],
    ...(opts.security === "none"
      ? { disabledCommands: ["STARTTLS"], allowInsecureAuth: true }
      : {}),
    logger: false,
    onAuth(auth, session, callback) {
      const accepted = auth.username === opts.user && auth.password === opts.password;
      attempts.push({
        method: auth.method,
        user: auth.username ?? "",
        accepted,
        secure: session.secure,
      });
      if (accepted) callback(null, { user: auth.username });
      else callback(new Error("Invalid username or password"));
    },
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    host: "127.0.0.1",
    port,
    cert,
    attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A throw-away self-signed certificate for 127.0.0.1 and localhost, as PEM text. */
export function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "vm-auth-smtp-"));
  try {
    const files = makeSelfSignedCert(dir);
    return { cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
