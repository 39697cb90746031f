/**
 * The packages a secretsd bundle needs at run time. scripts/build.mjs leaves node_modules
 * external, so `secretsd install` copies them beside the installed bundle: the packages its
 * import statements name and everything they depend on, found the way node resolves them.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { dirname, isAbsolute, join } from "node:path";
import { ConfigError } from "./config.js";

/**
 * The packages the bundle imports and everything they depend on, by name → directory, found
 * the way node resolves them from the bundle's directory. A self-contained bundle has none.
 */
export async function bundlePackages(bundle: string): Promise<Map<string, string>> {
  if (!isAbsolute(bundle) || !existsSync(bundle)) {
    throw new ConfigError(
      `bundle: ${bundle} does not exist (run install from the built secretsd.js)`,
    );
  }
  const code = await readFile(bundle, "utf8");
  const builtins = new Set(builtinModules);
  const found = new Map<string, string>();
  const visit = (spec: string, from: string) => {
    const name = spec.startsWith("@")
      ? spec.split("/").slice(0, 2).join("/")
      : (spec.split("/")[0] ?? spec);
    if (spec.startsWith("node:") || builtins.has(name) || found.has(name)) return;
    const dir = findPackage(name, from);
    if (!dir) throw new ConfigError(`bundle: cannot find package '${name}' that ${bundle} imports`);
    found.set(name, dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<
      string,
      unknown
    >;
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      for (const dep of Object.keys((pkg[field] as Record<string, string> | undefined) ?? {})) {
        // An optional or peer dependency that is not installed is not needed.
        if (field !== "dependencies" && !findPackage(dep, dir)) continue;
        // One nested inside a copied package comes with it.
        const depDir = findPackage(dep, dir);
        if (depDir?.startsWith(`${dir}/node_modules/`)) continue;
        visit(dep, dir);
      }
    }
  };
  // esbuild hoists external imports to top-level statements, one a line.
  for (const m of code.matchAll(
    /^(?:import|export)\b[^\n]*?\bfrom\s*"([^"]+)";$|^import\s*"([^"]+)";$/gm,
  )) {
    const spec = m[1] ?? m[2] ?? "";
    if (!spec.startsWith(".") && !spec.startsWith("/")) visit(spec, dirname(bundle));
  }
  return found;
}

// --- internal ---

function findPackage(name: string, from: string): string | undefined {
  for (let d = from; ; d = dirname(d)) {
    const dir = join(d, "node_modules", name);
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(d) === d) return undefined;
  }
}
