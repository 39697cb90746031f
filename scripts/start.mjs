// `npm start`: runs the BUILT daemon (dist/bin/secretsd.js), building first when a bundle is
// missing or older than its sources. The daemon runs in this process (imported, not spawned):
// one pid, signals reach it directly, its exit code is ours; arguments pass through
// (`npm start -- --listen 127.0.0.1:0`).
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const OUTPUTS = ["dist/bin/secretsd.js", "dist/bin/secretsctl.js", "dist/shim.cjs"];
const SOURCE_DIRS = ["server", "client", "shim", "common", "proto"];
const SOURCE_FILES = ["scripts/build.mjs", "package.json"];

/** The newest mtime of what the bundles are built from (tests excluded). */
function newestSource() {
  let newest = 0;
  const visit = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (/\.(ts|js|mjs|cjs|json)$/.test(e.name) && !e.name.endsWith(".test.ts")) {
        newest = Math.max(newest, statSync(p).mtimeMs);
      }
    }
  };
  for (const d of SOURCE_DIRS) visit(join(ROOT, d));
  for (const f of SOURCE_FILES) newest = Math.max(newest, statSync(join(ROOT, f)).mtimeMs);
  return newest;
}

/** The oldest bundle's mtime, or 0 when one is missing. */
function oldestOutput() {
  let oldest = Number.POSITIVE_INFINITY;
  for (const f of OUTPUTS) {
    const st = statSync(join(ROOT, f), { throwIfNoEntry: false });
    if (!st) return 0;
    oldest = Math.min(oldest, st.mtimeMs);
  }
  return oldest;
}

if (oldestOutput() < newestSource()) {
  process.stderr.write("npm start: dist/ is missing or older than the sources: building\n");
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/build.mjs")], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (r.status !== 0) {
    process.stderr.write(`npm start: the build failed (${r.signal ?? `exit ${r.status}`})\n`);
    process.exit(1);
  }
}

// secretsd reads process.argv.slice(2): this script's own arguments.
await import(pathToFileURL(join(ROOT, "dist/bin/secretsd.js")).href);
