import { readFileSync } from "node:fs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImportItemSchema, Secret } from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import { ImportAction, ImportOutcome } from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import { type DotenvEntry, DotenvError, parseDotenv } from "../../dotenv.js";
import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { redact, UsageError } from "../errors.js";
import { MAX_VALUE_BYTES } from "../input.js";
import { note, printJson, printTable } from "../output.js";

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const SECRET_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;

type Action = "create" | "rotate" | "move" | "rotate+move" | "unchanged" | "skip";
const DONE: Record<Action, string> = {
  create: "created",
  rotate: "rotated",
  move: "moved",
  "rotate+move": "rotated+moved",
  unchanged: "unchanged",
  skip: "skipped",
};

interface Step {
  line: number;
  name: string;
  env: string;
  value: string;
  action: Action;
  /** The scope an existing secret moves to (--move-scope), when it moves. */
  moveTo?: string;
  /** Why a line is skipped, or what the import does not do to it; never a value. */
  notes: string[];
  /** What happened: DONE[action], "failed", or "not applied". */
  result?: string;
}

/**
 * `import FILE.env`: each variable becomes a secret named after it (lower-cased, after
 * `--prefix`), exporting the same env var. An existing secret is rotated only when its value
 * differs. The whole file is parsed and checked before anything changes; `--dry-run` prints
 * the plan and changes nothing. The report has a row per assignment line: created, rotated,
 * unchanged, or skipped with the reason.
 *
 * `--scope` places NEW secrets; an existing secret at another scope keeps its scope (the report
 * says so) unless `--move-scope`, which moves it. Without `--atomic` each secret is applied on
 * its own: a refused one is reported `failed` and the import exits 1 after the others. With
 * `--atomic` the whole file is one ImportSecrets call: every line applied, or none.
 */
export default defineClientCommand({
  meta: { name: "import", description: "create or rotate secrets from a dotenv file" },
  args: {
    file: { type: "positional", required: true, description: "the .env file" },
    scope: {
      type: "string",
      valueHint: "global|group:G|vm:V",
      description:
        "scope of NEW secrets (default global); an existing secret keeps its scope unless --move-scope",
    },
    "move-scope": {
      type: "boolean",
      description: "also move existing secrets of the file to --scope",
    },
    atomic: {
      type: "boolean",
      description: "all or nothing: apply every line in one server transaction, or none",
    },
    prefix: { type: "string", description: "prepended to each secret name, e.g. 'web.'" },
    "dry-run": { type: "boolean", description: "print what would change; change nothing" },
    "allow-sensitive-env": {
      type: "boolean",
      description: "allow env vars that change how programs run (PATH, LD_*, NODE_OPTIONS, …)",
    },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    if (args["move-scope"] && args.scope === undefined) {
      throw new UsageError("--move-scope needs --scope: the scope to move existing secrets to");
    }
    const entries = readEntries(args.file);
    const scope = args.scope === undefined || args.scope === "" ? "global" : args.scope;
    const move = args["move-scope"] === true;
    const steps = await plan(client, entries, args.prefix ?? "", scope, args.scope, move);
    const dryRun = args["dry-run"] === true;
    const allow = args["allow-sensitive-env"] === true;
    if (!dryRun) {
      const existing = steps.filter((s) => s.action !== "create" && changes(s));
      if (existing.length > 0) {
        const lines = existing.map((s) => s.line).join(", ");
        await confirm(
          `import changes ${existing.length} existing secret${existing.length === 1 ? "" : "s"} (line ${lines}); continue?`,
          args.yes,
        );
      }
      if (args.atomic) await applyAtomic(client, steps, args.scope ?? "", allow);
      else await applyEach(client, steps, args.scope ?? "", allow);
    }
    report(steps, dryRun, args.atomic === true, json);
    const failed = steps.filter((s) => s.result === "failed");
    if (failed.length > 0) {
      const at = failed.map((s) => s.line).join(", ");
      throw new Error(
        `import: ${failed.length} of ${steps.length} lines failed (line ${at}); the others were applied (--atomic applies all or none)`,
      );
    }
  },
});

// --- internal ---

function readEntries(file: string): DotenvEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(
      `file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  try {
    return parseDotenv(text);
  } catch (err) {
    if (err instanceof DotenvError) throw new Error(`${file}: ${err.message}`);
    throw err;
  }
}

function changes(s: Step): boolean {
  return s.action !== "unchanged" && s.action !== "skip";
}

/** Checks every variable and decides each line's action; throws before anything changes. */
async function plan(
  client: VmAuthClient,
  entries: readonly DotenvEntry[],
  prefix: string,
  scope: string,
  scopeArg: string | undefined,
  move: boolean,
): Promise<Step[]> {
  // Last assignment wins, as in a shell; an earlier one is reported skipped.
  const last = new Map(entries.map((e) => [e.name, e]));
  const { secrets } = await client.secrets.listSecrets({});
  const byName = new Map(secrets.map((s) => [s.name, s]));
  const steps: Step[] = [];
  for (const e of entries) {
    redact(e.value);
    const at = `line ${e.line}`;
    if (!ENV_NAME.test(e.name)) {
      // Not echoed: a name that is not an env var name may be part of a pasted value.
      throw new Error(`${at}: variable name must match ^[A-Z_][A-Z0-9_]*$`);
    }
    const name = `${prefix}${e.name.toLowerCase()}`;
    if (!SECRET_NAME.test(name)) {
      throw new Error(`${at}: ${e.name}: secret name '${name}' must match ${SECRET_NAME.source}`);
    }
    const step: Step = {
      line: e.line,
      name,
      env: e.name,
      value: e.value,
      action: "create",
      notes: [],
    };
    steps.push(step);
    const final = last.get(e.name);
    if (final !== e) {
      step.action = "skip";
      step.notes.push(`assigned again on line ${final?.line}`);
      continue;
    }
    if (e.value.includes("\0")) throw new Error(`${at}: ${e.name}: value contains NUL`);
    if (Buffer.byteLength(e.value) > MAX_VALUE_BYTES) {
      throw new Error(`${at}: ${e.name}: value is over ${MAX_VALUE_BYTES} bytes`);
    }
    const existing = byName.get(name);
    if (e.value === "") {
      step.action = "skip";
      step.notes.push("empty value");
      continue;
    }
    if (!existing) {
      checkEnvFree(secrets, e, scope);
      continue;
    }
    step.action = await compare(client, existing, e.value);
    if (existing.env !== e.name) {
      step.notes.push(
        `secret ${name} exports ${existing.env}, not ${e.name}; only its value is imported`,
      );
    }
    if (scopeArg !== undefined && existing.scope !== scope) {
      if (move) {
        step.moveTo = scope;
        step.action = step.action === "rotate" ? "rotate+move" : "move";
        step.notes.push(`moves from ${existing.scope} to ${scope}`);
      } else {
        step.notes.push(
          `exists at ${existing.scope}; --scope ${scope} applies to new secrets only (--move-scope moves it)`,
        );
      }
    }
  }
  return steps;
}

async function compare(client: VmAuthClient, existing: Secret, value: string): Promise<Action> {
  const cur = await client.secrets.getSecretValue({ name: existing.name });
  return cur.value === value ? "unchanged" : "rotate";
}

/** The server refuses two secrets giving one env var at one scope; say so before any change. */
function checkEnvFree(secrets: readonly Secret[], e: DotenvEntry, scope: string): void {
  const clash = secrets.find((s) => s.env === e.name && s.scope === scope);
  if (clash) {
    throw new Error(
      `line ${e.line}: env: ${e.name} is already given at scope ${scope} by secret '${clash.name}'`,
    );
  }
}

/** One secret at a time: a refused line is `failed` (with the server's reason), the rest go on. */
async function applyEach(
  client: VmAuthClient,
  steps: readonly Step[],
  scope: string,
  allowSensitiveEnv: boolean,
): Promise<void> {
  for (const s of steps) {
    try {
      const { name, value, env, action } = s;
      if (action === "create") {
        await client.secrets.createSecret({ name, value, env, scope, allowSensitiveEnv });
      }
      if (action === "rotate" || action === "rotate+move") {
        await client.secrets.rotateSecret({ name, value });
      }
      if (s.moveTo !== undefined) await client.secrets.updateSecret({ name, scope: s.moveTo });
      s.result = DONE[action];
    } catch (err) {
      s.result = "failed";
      s.notes.push(err instanceof Error ? err.message : String(err));
    }
  }
}

/** The whole file as one ImportSecrets call (all or nothing); an error names the line. */
async function applyAtomic(
  client: VmAuthClient,
  steps: readonly Step[],
  scope: string,
  allowSensitiveEnv: boolean,
): Promise<void> {
  const sent = steps.filter(changes);
  const items: MessageInitShape<typeof ImportItemSchema>[] = sent.map((s) =>
    s.action === "create"
      ? {
          name: s.name,
          action: ImportAction.CREATE,
          value: s.value,
          env: s.env,
          scope,
          allowSensitiveEnv,
        }
      : {
          name: s.name,
          action: ImportAction.ROTATE,
          value: s.value,
          ...(s.moveTo === undefined ? {} : { moveToScope: s.moveTo }),
        },
  );
  if (items.length > 0) {
    try {
      const res = await client.secrets.importSecrets({ items });
      res.results.forEach((r, i) => {
        const s = sent[i];
        if (!s) return;
        const rotated = r.outcome === ImportOutcome.ROTATED;
        const created = r.outcome === ImportOutcome.CREATED;
        const moved = r.movedFromScope !== "";
        s.result = created
          ? "created"
          : rotated
            ? moved
              ? "rotated+moved"
              : "rotated"
            : moved
              ? "moved"
              : "unchanged";
      });
    } catch (err) {
      if (err instanceof Error) {
        // items[3].env: … → line 7: IMP_X: env: … (the file's terms, not the request's).
        err.message = `${err.message.replace(/items\[(\d+)\]\.?/g, (m, i: string) => {
          const s = sent[Number(i)];
          return s ? `line ${s.line}: ${s.env}: ` : m;
        })}; nothing was imported (--atomic)`;
      }
      throw err;
    }
  }
  for (const s of steps) s.result ??= DONE[s.action];
}

function report(steps: readonly Step[], dryRun: boolean, atomic: boolean, json: boolean): void {
  if (json) {
    printJson({
      dryRun,
      atomic,
      results: steps.map((s) => ({
        line: s.line,
        name: s.name,
        env: s.env,
        action: s.action,
        ...(dryRun ? {} : { result: s.result ?? "not applied" }),
        ...(s.moveTo === undefined ? {} : { moveTo: s.moveTo }),
        notes: s.notes,
      })),
    });
  } else {
    printTable(
      ["LINE", dryRun ? "ACTION" : "RESULT", "NAME", "ENV", "NOTE"],
      steps.map((s) => [
        String(s.line),
        dryRun ? s.action : (s.result ?? "not applied"),
        s.name,
        s.env,
        s.notes.join("; ") || "-",
      ]),
    );
  }
  const n = (a: Action) => steps.filter((s) => s.action === a).length;
  const moved = n("move") + n("rotate+move");
  const rotated = n("rotate") + n("rotate+move");
  if (dryRun) {
    const mv = moved > 0 ? `, move ${moved}` : "";
    note(
      `dry run: would create ${n("create")}, rotate ${rotated}${mv}; ${n("unchanged")} unchanged, ${n("skip")} skipped; nothing was changed`,
    );
    return;
  }
  const r = (x: string) => steps.filter((s) => s.result?.split("+").includes(x)).length;
  const extra = [
    ...(moved > 0 ? [`${r("moved")} moved`] : []),
    ...(r("failed") > 0 ? [`${r("failed")} failed`] : []),
  ];
  note(
    [
      `${r("created")} created, ${r("rotated")} rotated, ${r("unchanged")} unchanged, ${r("skipped")} skipped`,
      ...extra,
    ].join(", "),
  );
}
