/**
 * ImportSecrets: many creates, rotations and scope moves as ONE store mutation, so that
 * `secretsctl import --atomic` leaves either every line applied or none (issue #12). Each item
 * is held to the rules of the single-secret use case it stands for (secrets.ts: create,
 * rotate, update's scope move), and every error names the item (`items[3].name`). Items are
 * applied to the head in order, so a later item's env-var check sees the earlier ones.
 */
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isSecretsError,
  notFound,
} from "../errors.js";
import type { StoreView, Tx } from "../store/store.js";
import type { SecretRecord } from "../store/types.js";
import { actorOf } from "./caller.js";
import type { Actor, Deps } from "./context.js";
import { secretAad } from "./context.js";
import { checkEnvPolicy } from "./env-policy.js";
import { defaultEnvName, PROVIDER_ENV } from "./presets.js";
import { checkEnvFree, envsOf, nextVersion, pruneVersions, sealVersion } from "./records.js";
import type { Scope } from "./validate.js";
import { checkEnvName, checkSecretName, checkValue, formatScope, parseScope } from "./validate.js";

/** More items than this in one request is refused: one mutation holds them all. */
export const MAX_IMPORT_ITEMS = 1000;

export interface ImportItemInput {
  name: string;
  action: "create" | "rotate" | "unspecified";
  value: string;
  /** create only. */
  env?: string;
  /** create only. */
  scope?: string;
  /** create only. */
  allowSensitiveEnv?: boolean;
  /** rotate only: the scope to move the secret to; undefined keeps it. */
  moveToScope?: string | undefined;
}

export type ImportOutcome = "created" | "rotated" | "unchanged";

export interface ImportItemResult {
  name: string;
  outcome: ImportOutcome;
  record: SecretRecord;
  /** The scope before a move; "" when nothing moved. */
  movedFrom: string;
}

/**
 * Applies `itemsIn` all or nothing (see the file comment). Throws the first item's error,
 * naming `items[i].<field>`, with nothing changed; audits each item as its single-secret RPC
 * would (secret.create, secret.rotate, secret.update), with the error code when it failed.
 */
export async function importSecrets(deps: Deps, actor: Actor, itemsIn: readonly ImportItemInput[]) {
  const base = { requestId: actor.requestId, actor: actorOf(actor.caller) };
  try {
    const items = checkItems(itemsIn);
    const { results, revision } = await apply(deps, actor, items);
    const entries = results.flatMap((r) => auditEntries(r, revision));
    // An empty batch is no batch (the broker would wait on no device).
    if (entries.length > 0) {
      await deps.audit.recordMany(
        "change",
        entries.map((e) => ({ ...base, ...e })),
      );
    }
    return { results, revision };
  } catch (err) {
    const code = isSecretsError(err) ? err.code : "internal";
    // A request over the limit is one entry, not a thousand: it named no item that was checked.
    const entries =
      itemsIn.length > MAX_IMPORT_ITEMS
        ? [{ ...base, action: "secret.import", detail: `${itemsIn.length} items`, result: code }]
        : itemsIn.map((it) => ({
            ...base,
            action: it.action === "create" ? "secret.create" : "secret.rotate",
            secret: it.name.slice(0, 70),
            detail: "import: nothing applied",
            result: code,
          }));
    if (entries.length > 0) await deps.audit.recordMany("change", entries).catch(() => {});
    throw err;
  }
}

// --- internal ---

interface CheckedItem {
  at: string;
  name: string;
  action: "create" | "rotate";
  value: string;
  env: string;
  provider: string;
  scope: Scope;
  allowSensitiveEnv: boolean;
  move: Scope | undefined;
}

/** Every check that needs no store, for every item, before the mutation. */
function checkItems(items: readonly ImportItemInput[]): CheckedItem[] {
  if (items.length === 0) throw invalidArgument("items", "is empty: nothing to import");
  if (items.length > MAX_IMPORT_ITEMS) {
    throw invalidArgument("items", `${items.length} items; the limit is ${MAX_IMPORT_ITEMS}`);
  }
  const seen = new Set<string>();
  return items.map((it, i) => {
    const at = `items[${i}]`;
    const name = checkSecretName(`${at}.name`, it.name);
    if (seen.has(name)) throw invalidArgument(`${at}.name`, `'${name}' appears more than once`);
    seen.add(name);
    if (it.action === "unspecified") throw invalidArgument(`${at}.action`, "is required");
    const value = checkValue(`${at}.value`, it.value);
    if (it.action === "rotate") {
      for (const f of ["env", "scope"] as const) {
        if (it[f]) throw invalidArgument(`${at}.${f}`, "applies to create only");
      }
      if (it.allowSensitiveEnv) {
        throw invalidArgument(`${at}.allow_sensitive_env`, "applies to create only");
      }
      const move =
        it.moveToScope === undefined
          ? undefined
          : parseScope(`${at}.move_to_scope`, it.moveToScope);
      const rest = { env: "", provider: "", scope: { kind: "global" } as Scope };
      return { at, name, action: it.action, value, move, allowSensitiveEnv: false, ...rest };
    }
    if (it.moveToScope !== undefined) {
      throw invalidArgument(`${at}.move_to_scope`, "applies to rotate only");
    }
    const provider = PROVIDER_ENV[name] ? name : "";
    const env = checkEnvName(`${at}.env`, it.env || defaultEnvName(name, provider));
    const allowSensitiveEnv = it.allowSensitiveEnv === true;
    checkEnvPolicy(`${at}.env`, env, allowSensitiveEnv);
    const scope = parseScope(`${at}.scope`, it.scope ?? "");
    return {
      at,
      name,
      action: it.action,
      value,
      env,
      provider,
      scope,
      allowSensitiveEnv,
      move: undefined,
    };
  });
}

async function apply(deps: Deps, actor: Actor, items: CheckedItem[]) {
  // Nothing to change (every item a rotation to the value it has): no empty revision.
  const same = items.map((it) => unchangedIn(deps, deps.store.data, it));
  if (same.every((r) => r !== undefined)) {
    return { results: same as ImportItemResult[], revision: deps.store.data.revision };
  }
  return deps.store.mutate((data, tx) => {
    const results = items.map((it) =>
      it.action === "create"
        ? create(deps, actor, data, tx, it)
        : rotate(deps, actor, data, tx, it),
    );
    return { results, revision: tx.revision };
  });
}

function create(
  deps: Deps,
  actor: Actor,
  data: StoreView,
  tx: Tx,
  it: CheckedItem,
): ImportItemResult {
  const { at, name } = it;
  if (data.secrets[name]) throw alreadyExists(`${at}.name`, `secret '${name}' already exists`);
  checkScope(data, it.scope, `${at}.scope`);
  const scope = formatScope(it.scope);
  checkEnvFree(data, [{ field: `${at}.env`, env: it.env }], scope, name);
  const now = new Date().toISOString();
  const record = tx.put("secrets", {
    name,
    env: it.env,
    scope,
    kind: "static",
    provider: it.provider,
    description: "",
    labels: {},
    ...(it.allowSensitiveEnv ? { allowSensitiveEnv: true } : {}),
    currentVersion: 1,
    versions: [sealVersion(deps.barrier, name, 1, it.value, actor, now)],
    createdAt: now,
    updatedAt: now,
  });
  return { name, outcome: "created", record, movedFrom: "" };
}

function rotate(
  deps: Deps,
  actor: Actor,
  data: StoreView,
  tx: Tx,
  it: CheckedItem,
): ImportItemResult {
  const { at, name } = it;
  const rec = existing(data, it);
  const nextScope = it.move ? formatScope(it.move) : rec.scope;
  const moved = nextScope !== rec.scope;
  if (it.move && moved) {
    if (rec.class === "infrastructure") {
      throw failedPrecondition(
        `${at}.move_to_scope: secret '${name}' is infrastructure: host-only, it never enters a VM's view`,
        `${at}.move_to_scope`,
      );
    }
    checkScope(data, it.move, `${at}.move_to_scope`);
    const envs = envsOf(rec).map((env) => ({ field: `${at}.move_to_scope`, env }));
    checkEnvFree(data, envs, nextScope, name);
  }
  const same = sameValue(deps, rec, it.value);
  if (same && !moved) return { name, outcome: "unchanged", record: rec, movedFrom: "" };
  const now = new Date().toISOString();
  let next: Omit<SecretRecord, "modRevision">;
  if (same) {
    next = { ...rec, scope: nextScope, updatedAt: now };
  } else {
    // As RotateSecret: the old value's expiry does not carry over to the new value.
    const { valueExpiresAt: _old, ...rest } = rec;
    const version = nextVersion(rec);
    const versions = [
      ...rec.versions,
      sealVersion(deps.barrier, name, version, it.value, actor, now),
    ];
    next = {
      ...rest,
      scope: nextScope,
      versions: pruneVersions(versions, version),
      currentVersion: version,
      updatedAt: now,
    };
  }
  const record = tx.put("secrets", next);
  return {
    name,
    outcome: same ? "unchanged" : "rotated",
    record,
    movedFrom: moved ? rec.scope : "",
  };
}

/** The existing secret a rotation names; NOT_FOUND or FAILED_PRECONDITION naming the item. */
function existing(data: StoreView, it: CheckedItem): SecretRecord {
  const rec = data.secrets[it.name];
  if (!rec) throw notFound("secret", it.name, `${it.at}.name`);
  if (rec.oauth) {
    throw failedPrecondition(
      `${it.at}.name: secret '${it.name}' is an oauth credential: its access token is not rotated by hand`,
      `${it.at}.name`,
    );
  }
  return rec;
}

/** The result of an item that changes nothing in `data`, else undefined. */
function unchangedIn(deps: Deps, data: StoreView, it: CheckedItem): ImportItemResult | undefined {
  if (it.action !== "rotate") return undefined;
  const rec = data.secrets[it.name];
  if (!rec || rec.oauth) return undefined;
  if (it.move && formatScope(it.move) !== rec.scope) return undefined;
  if (!sameValue(deps, rec, it.value)) return undefined;
  return { name: it.name, outcome: "unchanged", record: rec, movedFrom: "" };
}

/** Whether `value` is the current value; a damaged one counts as different (it is replaced). */
function sameValue(deps: Deps, rec: SecretRecord, value: string): boolean {
  const v = rec.versions.find((x) => x.version === rec.currentVersion);
  if (!v || deps.damage.has(rec.name, v)) return false;
  try {
    return deps.barrier.open(secretAad(rec.name, v.version), v.ciphertext) === value;
  } catch {
    return false;
  }
}

/** NOT_FOUND naming `field` when `scope` names a group or VM that does not exist. */
function checkScope(data: StoreView, scope: Scope, field: string): void {
  if (scope.kind === "group" && !data.groups[scope.name])
    throw notFound("group", scope.name, field);
  if (scope.kind === "vm" && !data.vms[scope.name]) throw notFound("vm", scope.name, field);
}

/** The audit entries of one applied item, as its single-secret RPC writes them. */
function auditEntries(r: ImportItemResult, revision: number) {
  const common = { secret: r.name, result: "ok", detail: "import" };
  const entries: {
    action: string;
    secret: string;
    result: string;
    detail: string;
    version?: number;
    revision?: number;
  }[] = [];
  if (r.outcome === "created")
    entries.push({ ...common, action: "secret.create", version: 1, revision });
  if (r.outcome === "rotated") {
    entries.push({
      ...common,
      action: "secret.rotate",
      version: r.record.currentVersion,
      revision,
    });
  }
  if (r.movedFrom) {
    entries.push({
      ...common,
      action: "secret.update",
      detail: `import: scope ${r.movedFrom} -> ${r.record.scope}`,
      revision,
    });
  }
  return entries;
}
