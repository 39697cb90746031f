// Builds the three programs with esbuild:
//   dist/bin/secretsd.js, dist/bin/secretsctl.js  ESM, node_modules left external
//   dist/shim.cjs                                  one self-contained CJS file (no native modules):
//                                                  an ESM bundle of CJS deps fails with
//                                                  "Dynamic require" (esbuild#1921)
import { chmod, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: false,
  logLevel: "warning",
};
await mkdir("dist/bin", { recursive: true });
const banner = { js: "#!/usr/bin/env node" };
await Promise.all([
  build({
    ...common,
    entryPoints: ["server/main.ts"],
    outfile: "dist/bin/secretsd.js",
    format: "esm",
    packages: "external",
    banner,
  }),
  build({
    ...common,
    entryPoints: ["client/cli/main.ts"],
    outfile: "dist/bin/secretsctl.js",
    format: "esm",
    packages: "external",
    banner,
  }),
  // grpc-js requires @grpc/proto-loader lazily, only for server-side services (channelz) the
  // shim never reaches; leaving it out takes the bundle from 544 KB to 395 KB.
  // The shim targets Node 18, what Debian 12's and Ubuntu 24.04's `apt install nodejs` gives a
  // guest; test/shim-node18.test.ts runs it on Debian's own nodejs 18.
  build({
    ...common,
    target: "node18",
    entryPoints: ["shim/main.ts"],
    outfile: "dist/shim.cjs",
    format: "cjs",
    banner,
    minify: true,
    external: ["@grpc/proto-loader"],
  }),
]);
await Promise.all(
  ["dist/bin/secretsd.js", "dist/bin/secretsctl.js", "dist/shim.cjs"].map((f) => chmod(f, 0o755)),
);
