/**
 * Every secret value a test uses is registered here, so that the suite's teardown
 * (test/global-setup.ts) can prove none of them reached a log, audit or store file in
 * plaintext. Values are generated per test run: never real secrets.
 */

import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { join } from "node:path";

/** The root under which every test daemon keeps its data dir and logs. */
export function testRoot(): string | undefined {
  return process.env.VM_AUTH_TEST_ROOT;
}

/** Registers `value` as secret and returns it. */
export function track<T extends string>(value: T): T {
  const root = testRoot();
  if (root) appendFileSync(join(root, "values.jsonl"), `${JSON.stringify(value)}\n`);
  return value;
}

/** A fresh, unguessable, registered secret value with a readable prefix. */
export function secretValue(prefix = "sk-test"): string {
  return track(`${prefix}-${randomBytes(12).toString("hex")}`);
}
