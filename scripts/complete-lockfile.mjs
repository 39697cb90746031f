// npm ci checks that every optional platform package of @biomejs/biome and @bufbuild/buf is in
// package-lock.json. The registry reachable from our machines serves only their Linux builds,
// so `npm install` here leaves the other platforms out of the lock and `npm ci` then refuses
// it. This adds the missing entries (version, os, cpu, libc, optional; nothing to fetch: npm
// skips packages for other platforms). Run it after `npm install` changes the lock.
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const pk = lock.packages;
const CPU = { aarch64: "arm64", armv7: "arm" };
let added = 0;
for (const parent of ["@biomejs/biome", "@bufbuild/buf"]) {
  const entry = pk[`node_modules/${parent}`];
  if (!entry) continue;
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (pk[`node_modules/${name}`]) continue;
    const m = /-(android|darwin|linux|win32)-([a-z0-9]+)(-musl)?$/.exec(name);
    if (!m) throw new Error(`cannot tell the platform of ${name}`);
    pk[`node_modules/${name}`] = {
      version,
      cpu: [CPU[m[2]] ?? m[2]],
      dev: true,
      ...(m[3] ? { libc: ["musl"] } : {}),
      license: entry.license,
      optional: true,
      os: [m[1]],
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(pk).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} platform entries`);
