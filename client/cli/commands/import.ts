import { readFileSync } from "node:fs";
import type { Secret } from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import { type DotenvEntry, DotenvError, parseDotenv } from "../../dotenv.js";
import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { note, printJson, printTable } from "../output.js";

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const SECRET_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;
const MAX_VALUE_BYTES = 64 * 1024;

type Action = "create" | "rotate" | "unchanged" | "skip";

interface Step {
  name: string;
  env: string;
  line: number;
  value: string;
  action: Action;
}

/**
 * `import FILE.env`: each variable becomes a secret named after it (lower-cased, after
 * `--prefix`), exporting the same env var. An existing secret is rotated only when its value
 * differs. The whole file is parsed and checked before anything changes; `--dry-run` prints
 * the plan and changes nothing.
 */
export default defineClientCommand({
  meta: { name: "import", description: "create or rotate secrets from a dotenv file" },
  args: {
    file: { type: "positional", required: true, description: "the .env file" },
    scope: {
      type: "string",
      valueHint: "global|group:G|vm:V",
      description: "scope of new secrets (default global)",
    },
    prefix: { type: "string", description: "prepended to each secret name, e.g. 'web.'" },
    "dry-run": { type: "boolean", description: "print what would change; change nothing" },
    "allow-sensitive-env": {
      type: "boolean",
      description: "allow env vars that change how programs run (PATH, LD_*, NODE_OPTIONS, …)",
    },
  },
  async run({ args, client, json }) {
    const entries = readEntries(args.file);
    const scope = args.scope ?? "global";
    const steps = await plan(client, entries, args.prefix ?? "", scope === "" ? "global" : scope);
    const dryRun = args["dry-run"] === true;
    if (!dryRun) {
      await apply(client, steps, args.scope ?? "", args["allow-sensitive-env"] === true);
    }
    if (json) {
      printJson({
        dryRun,
        results: steps.map(({ name, env, line, action }) => ({ name, env, line, action })),
      });
    } else {
      printTable(
        ["ACTION", "NAME", "ENV"],
        steps.map((s) => [s.action, s.name, s.env]),
      );
    }
    const n = (a: Action) => steps.filter((s) => s.action === a).length;
    const rest = `${n("unchanged")} unchanged, ${n("skip")} skipped`;
    note(
      dryRun
        ? `dry run: would create ${n("create")}, rotate ${n("rotate")}; ${rest}; nothing was changed`
        : `${n("create")} created, ${n("rotate")} rotated, ${rest}`,
    );
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

/** Checks every variable and decides each one's action; throws before anything changes. */
async function plan(
  client: VmAuthClient,
  entries: readonly DotenvEntry[],
  prefix: string,
  scope: string,
): Promise<Step[]> {
  // Last assignment wins, as in a shell; the step keeps that line.
  const last = new Map(entries.map((e) => [e.name, e]));
  const { secrets } = await client.secrets.listSecrets({});
  const byName = new Map(secrets.map((s) => [s.name, s]));
  const steps: Step[] = [];
  for (const e of last.values()) {
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
    if (e.value.includes("\0")) throw new Error(`${at}: ${e.name}: value contains NUL`);
    if (Buffer.byteLength(e.value) > MAX_VALUE_BYTES) {
      throw new Error(`${at}: ${e.name}: value is over ${MAX_VALUE_BYTES} bytes`);
    }
    const existing = byName.get(name);
    const step: Step = { name, env: e.name, line: e.line, value: e.value, action: "create" };
    if (e.value === "") step.action = "skip";
    else if (existing) step.action = await compare(client, existing, e.value);
    else checkEnvFree(secrets, e, scope);
    if (step.action === "skip") note(`${at}: ${e.name} is empty; skipped`);
    if (existing && existing.env !== e.name && step.action !== "skip") {
      note(
        `${at}: secret ${name} exports ${existing.env}, not ${e.name}; only its value is imported`,
      );
    }
    steps.push(step);
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

async function apply(
  client: VmAuthClient,
  steps: readonly Step[],
  scope: string,
  allowSensitiveEnv: boolean,
): Promise<void> {
  let done = 0;
  for (const s of steps) {
    try {
      if (s.action === "create") {
        const { name, value, env } = s;
        await client.secrets.createSecret({ name, value, env, scope, allowSensitiveEnv });
      } else if (s.action === "rotate") {
        await client.secrets.rotateSecret({ name: s.name, value: s.value });
      }
    } catch (err) {
      // The server's own checks (e.g. the env deny-list) can refuse an entry the plan let
      // through: say which line, and how much of the file is already in.
      if (err instanceof Error) {
        err.message = `line ${s.line}: ${s.env}: ${err.message} (${done} earlier entr${done === 1 ? "y was" : "ies were"} applied)`;
      }
      throw err;
    }
    if (s.action !== "skip" && s.action !== "unchanged") done++;
  }
}
