import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { defineCommand } from "citty";
import type {
  ManifestBinding,
  PlannedEntry,
  VmEnvPlan,
} from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { EntryState, ManifestBindingSchema } from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { UsageError } from "../errors.js";
import { line, printTable } from "../output.js";
import { entryActionText, entryStateText } from "../views.js";

/**
 * `manifest …`: what a VM or a group of VMs needs (issue #11). The subcommands share the
 * helpers below: the binding flags, reading a manifest file, and the plan tables.
 */
export default defineCommand({
  meta: {
    name: "manifest",
    description: "manifests: plan, apply, validate, template, prompt, list, show, remove, status",
  },
  subCommands: {
    plan: () => import("./manifest-plan.js").then((m) => m.default),
    apply: () => import("./manifest-apply.js").then((m) => m.default),
    validate: () => import("./manifest-validate.js").then((m) => m.default),
    template: () => import("./manifest-template.js").then((m) => m.default),
    prompt: () => import("./manifest-prompt.js").then((m) => m.default),
    list: () => import("./manifest-list.js").then((m) => m.default),
    show: () => import("./manifest-show.js").then((m) => m.default),
    remove: () => import("./manifest-remove.js").then((m) => m.default),
    status: () => import("./manifest-status.js").then((m) => m.default),
  },
});

/** secretsd's limit on a manifest's text (server/secrets/manifest/schema.ts, MANIFEST_LIMITS). */
const MAX_MANIFEST_BYTES = 256 * 1024;

/** The manifest FILE positional and the binding flags of plan, apply and validate. */
export const manifestFileArgs = {
  file: {
    type: "positional",
    required: true,
    description: "the manifest, JSON ('-' reads stdin)",
  },
  vm: { type: "string", description: "bind the manifest to this VM" },
  group: { type: "string", description: "bind the manifest to this group (a profile of VMs)" },
} as const;

/**
 * The binding named by `--vm` or `--group`.
 * @throws UsageError unless exactly one is given.
 */
export function bindingOf(args: {
  vm?: string | undefined;
  group?: string | undefined;
}): ManifestBinding {
  if (args.vm !== undefined && args.group !== undefined) {
    throw new UsageError("give --vm VM or --group GROUP, not both");
  }
  if (args.vm !== undefined)
    return create(ManifestBindingSchema, { target: { case: "vm", value: args.vm } });
  if (args.group !== undefined) {
    return create(ManifestBindingSchema, { target: { case: "group", value: args.group } });
  }
  throw new UsageError("a binding is required: --vm VM or --group GROUP");
}

/**
 * A manifest file's text, or stdin's for `-`. The server parses and validates it; this only
 * reads it, refusing what the server would refuse for its size alone.
 * @throws Error naming `file` when it cannot be read, is not UTF-8 or is too large.
 */
export async function readManifestText(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = file === "-" ? await readStdinBytes() : readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new Error(`file: cannot read ${file} (${code})`);
  }
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new Error(
      `file: ${file} is over ${MAX_MANIFEST_BYTES} bytes; the limit is ${MAX_MANIFEST_BYTES}`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`file: ${file} is not valid UTF-8`);
  }
}

/** Where an entry's value lives: its secret and scope ("vm:NAME", "group:NAME" or "host"). */
export function targetText(e: { secret: string; scope: string }): string {
  return `${e.secret}@${e.scope}`;
}

/**
 * Prints a plan (or an applied plan): one row per entry and target, then one row per VM with
 * the env it would see (names only) and the required ids it would still miss.
 */
export function printPlan(entries: readonly PlannedEntry[], vms: readonly VmEnvPlan[]): void {
  const withError = entries.some((e) => e.error !== "");
  const columns = ["ID", "CLASS", "TARGET", "ACTION", "STATE"];
  printTable(
    withError ? [...columns, "ERROR"] : columns,
    entries.map((e) => {
      const row = [
        e.id,
        e.class,
        targetText(e),
        entryActionText(e.action),
        entryStateText(e.state),
      ];
      return withError ? [...row, e.error] : row;
    }),
  );
  if (vms.length === 0) {
    line("");
    line("no VM is bound yet: per-VM entries have a target once a VM joins");
    return;
  }
  line("");
  printTable(
    ["VM", "ENV", "MISSING"],
    vms.map((v) => [v.vm, v.env.join(","), v.missing.join(",")]),
  );
}

/** An entry that is not ready: missing (when required) or malformed, with where. */
export interface Problem {
  id: string;
  class: string;
  env: string;
  state: "missing" | "malformed";
  /** The scopes it is not ready at ("vm:web1", "group:prod", "host"). */
  scopes: string[];
  error: string;
}

/**
 * The entries of a plan that are not ready now, one per id in manifest order: a required
 * entry with no value, or any entry whose value does not match its format.
 */
export function problemsOf(entries: readonly PlannedEntry[]): Problem[] {
  const byId = new Map<string, Problem>();
  for (const e of entries) {
    const malformed = e.state === EntryState.MALFORMED;
    const missing = e.state === EntryState.MISSING && e.required;
    if (!malformed && !missing) continue;
    const p = byId.get(e.id);
    if (p) {
      if (malformed) p.state = "malformed";
      p.scopes.push(e.scope);
      continue;
    }
    byId.set(e.id, {
      id: e.id,
      class: e.class,
      env: e.env,
      state: malformed ? "malformed" : "missing",
      scopes: [e.scope],
      error: e.error,
    });
  }
  return [...byId.values()];
}

// --- internal ---

async function readStdinBytes(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    chunks.push(chunk);
    // One byte over is enough to refuse it.
    if (size > MAX_MANIFEST_BYTES) break;
  }
  return Buffer.concat(chunks);
}
