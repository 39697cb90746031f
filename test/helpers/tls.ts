import { execFileSync } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DaemonProcess } from "./process.js";
import { spawnDaemon } from "./process.js";
import { testRoot } from "./values.js";

/** A throw-away self-signed certificate for 127.0.0.1 and localhost, made per run in `dir`. */
export function makeSelfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=secretsd-test",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

/**
 * A built secretsd serving TCP over TLS with a fresh self-signed certificate, in a new dir
 * under the suite root: the certificate is `<dir>/cert.pem`, the data dir `<dir>/data`.
 */
export async function spawnTlsDaemon(prefix: string): Promise<{ dir: string; p: DaemonProcess }> {
  const dir = await mkdtemp(join(testRoot() ?? tmpdir(), prefix));
  const { cert, key } = makeSelfSignedCert(dir);
  const p = await spawnDaemon(join(dir, "data"), [
    "--listen",
    "127.0.0.1:0",
    "--tls-cert",
    cert,
    "--tls-key",
    key,
  ]);
  return { dir, p };
}
