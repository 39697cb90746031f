/**
 * One daemon per data dir. The lock is a listening socket in Linux's abstract namespace,
 * named after the data dir's real path: the kernel releases it the moment the holder dies
 * (even on kill -9), so there is no stale lock to clean up, and no race between two starts.
 * The holder's pid is written to `secretsd.pid` for the error message only.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { SecretsError } from "./errors.js";

export interface DataDirLock {
  release(): Promise<void>;
}

/** Takes the lock or throws FAILED_PRECONDITION naming the running daemon. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const real = realpathSync(dataDir);
  const name = `\0vm-auth-secretsd-${createHash("sha256").update(real).digest("hex").slice(0, 32)}`;
  const pidFile = join(dataDir, "secretsd.pid");
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        let pid = "unknown";
        try {
          pid = readFileSync(pidFile, "utf8").trim();
        } catch {}
        reject(
          new SecretsError(
            "failed_precondition",
            `another secretsd (pid ${pid}) is already running on data dir ${real}`,
          ),
        );
      } else reject(err);
    });
    server.listen({ path: name, exclusive: true }, () => resolve());
  });
  server.unref();
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
  return { release: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
