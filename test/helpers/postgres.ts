/**
 * A private PostgreSQL cluster for one test file, from Debian's `postgresql` package: initdb
 * and pg_ctl run as the `postgres` user in a fresh temp dir, listening on 127.0.0.1 and a free
 * port only, host logins by password (scram-sha-256, and md5 for the role made for it).
 * Nothing of the machine's own clusters is touched; stop() removes the dir.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface PostgresCluster {
  host: "127.0.0.1";
  port: number;
  /** Roles made by start(): name → password (SCRAM-stored; `md5` for the md5 role). */
  roles: Record<string, { password: string; auth: "scram-sha-256" | "md5" }>;
  /** The server's log: with log_connections, "connection authenticated: … method=md5". */
  log(): string;
  stop(): void;
}

/**
 * The directory holding initdb and pg_ctl: from PATH, else Debian's
 * /usr/lib/postgresql/<version>/bin (newest), else undefined.
 */
export function findPostgresBin(): string | undefined {
  const which = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" });
  const onPath = which.stdout.trim();
  // Through the symlink: /usr/local/bin/initdb may link into /usr/lib/postgresql/15/bin,
  // where psql and pg_ctl also are.
  if (which.status === 0 && onPath !== "") return dirname(realpathSync(onPath));
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

/**
 * Starts a cluster with roles `scram_user` (scram-sha-256) and `md5_user` (md5), each with
 * database of its name. Takes 1-3 s. Throws naming what is missing when PostgreSQL is not
 * installed (`apt-get install -y postgresql`), or, as root, there is no `postgres` user.
 */
export async function startPostgres(passwords: {
  scram: string;
  md5: string;
}): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  if (bin === undefined) {
    throw new Error(
      "PostgreSQL not found (no initdb on PATH or under /usr/lib/postgresql): apt-get install -y postgresql",
    );
  }
  // initdb refuses to run as root: as root the cluster belongs to the package's `postgres`
  // user; as anyone else, to them.
  const root = process.getuid?.() === 0;
  const id = (flag: string) =>
    root ? Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim()) : undefined;
  const uid = id("-u") ?? process.getuid?.() ?? 0;
  const gid = id("-g") ?? process.getgid?.() ?? 0;
  // Under /tmp, not the suite root: the postgres user must reach it, and its files are binary.
  const dir = mkdtempSync(join(tmpdir(), "vm-auth-pg-"));
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const asPostgres = (cmd: string, args: string[]) =>
    execFileSync(join(bin, cmd), args, {
      uid,
      gid,
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", LANG: "C.UTF-8" },
    });
  const port = await freePort();
  let started = false;
  const stop = () => {
    if (started) {
      try {
        asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    asPostgres("initdb", [
      "-D",
      data,
      "-U",
      "postgres",
      "--auth-local=trust",
      "--auth-host=reject",
      "-E",
      "UTF8",
      "--no-sync",
      "--no-instructions",
    ]);
    // First match wins: md5_user by md5, everyone else by scram-sha-256, only over 127.0.0.1.
    writeFileSync(
      join(data, "pg_hba.conf"),
      [
        "local all postgres trust",
        "host all md5_user 127.0.0.1/32 md5",
        "host all all 127.0.0.1/32 scram-sha-256",
        "",
      ].join("\n"),
    );
    asPostgres("pg_ctl", [
      "-D",
      data,
      "-l",
      join(dir, "postgres.log"),
      "-w",
      "-t",
      "30",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c log_connections=on`,
      "start",
    ]);
    started = true;
    const sql = [
      "SET password_encryption = 'scram-sha-256';",
      `CREATE ROLE scram_user LOGIN PASSWORD '${passwords.scram}';`,
      "CREATE DATABASE scram_user OWNER scram_user;",
      "SET password_encryption = 'md5';",
      `CREATE ROLE md5_user LOGIN PASSWORD '${passwords.md5}';`,
      "CREATE DATABASE md5_user OWNER md5_user;",
    ];
    for (const s of sql)
      asPostgres("psql", [
        "-h",
        dir,
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-qc",
        s,
      ]);
  } catch (err) {
    stop();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`starting PostgreSQL failed: ${stderr.trim() || String(err)}`);
  }
  return {
    host: "127.0.0.1",
    port,
    roles: {
      scram_user: { password: passwords.scram, auth: "scram-sha-256" },
      md5_user: { password: passwords.md5, auth: "md5" },
    },
    log: () => readFileSync(join(dir, "postgres.log"), "utf8"),
    stop,
  };
}

/** A TCP port nothing listens on right now (bound, read, released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === "string") throw new Error("no TCP address");
  return addr.port;
}
