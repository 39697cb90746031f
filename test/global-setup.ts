/**
 * Integration suite setup: one root dir for every daemon's data dir and log. Teardown reads
 * every file under it (store, audit log, daemon logs, shim logs) and fails the run if any
 * registered secret value (test/helpers/values.ts) appears in plaintext.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function setup() {
  const root = mkdtempSync(join(tmpdir(), "vm-auth-suite-"));
  process.env.VM_AUTH_TEST_ROOT = root;
  return () => teardown(root);
}

function teardown(root: string) {
  let values: string[] = [];
  try {
    values = readFileSync(join(root, "values.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string)
      // Only values long enough that a match cannot be chance.
      .filter((v) => v.length >= 12);
  } catch {}
  const leaks: string[] = [];
  let scanned = 0;
  for (const file of walk(root)) {
    if (file.endsWith("values.jsonl") || file.endsWith(".sock")) continue;
    const text = readFileSync(file, "utf8");
    scanned++;
    for (const v of values) {
      if (text.includes(v)) leaks.push(`${file} contains a secret value (${v.slice(0, 8)}…)`);
    }
  }
  rmSync(root, { recursive: true, force: true });
  if (values.length === 0 || scanned === 0) {
    throw new Error(`leak check saw ${values.length} values and ${scanned} files: nothing checked`);
  }
  if (leaks.length > 0) throw new Error(`secret values leaked:\n${leaks.join("\n")}`);
  process.stdout.write(`leak check: ${values.length} secret values, ${scanned} files, no leak\n`);
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) yield* walk(p);
    else if (st.isFile()) yield p;
  }
}
