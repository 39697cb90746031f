/**
 * The template catalogue: the built-ins plus user templates from `<data dir>/templates/*.json`.
 *
 * A user template may not take a built-in's name. A stored credential records its template by
 * name; if a file could redefine `openai`, every existing openai credential would silently
 * change its fields, env vars and, worse, where its connection test sends the key. To change a
 * built-in, copy it under a new name (`openai-proxy`). Refused at load, naming the file.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { SecretsError } from "../../errors.js";
import { API_TEMPLATES } from "./builtins-api.js";
import { DATA_TEMPLATES } from "./builtins-data.js";
import { INFRA_TEMPLATES } from "./builtins-infra.js";
import { trustFormats } from "./field-value.js";
import { TEMPLATE_LIMITS, type Template } from "./schema.js";
import { parseTemplateFile, TEMPLATE_NAME, validateTemplate } from "./validate-template.js";

/** Every built-in, validated by the same rules as a user template (a bad one fails at import). */
export const BUILTIN_TEMPLATES: readonly Template[] = [
  ...API_TEMPLATES,
  ...INFRA_TEMPLATES,
  ...DATA_TEMPLATES,
].map((t) => {
  const v = deepFreeze(validateTemplate(t, "builtin"));
  trustFormats(v);
  return v;
});

/** Looks templates up by name; built-ins first, then user templates, each sorted by name. */
export interface TemplateRegistry {
  list(): readonly Template[];
  get(name: string): Template | undefined;
}

/**
 * A registry of the built-ins and `user`. Throws INVALID_ARGUMENT naming the template's source
 * when a user template takes a built-in's name or two user templates share one.
 */
export function createTemplateRegistry(user: readonly Template[] = []): TemplateRegistry {
  const byName = new Map<string, Template>(BUILTIN_TEMPLATES.map((t) => [t.name, t]));
  const users = [...user].sort((a, b) => a.name.localeCompare(b.name));
  for (const t of users) {
    const taken = byName.get(t.name);
    if (taken !== undefined) {
      const why =
        taken.source === "builtin"
          ? `'${t.name}' is a built-in template; copy it under another name (e.g. ${t.name}-custom)`
          : `'${t.name}' is already defined by ${taken.source}`;
      throw new SecretsError("invalid_argument", `${t.source}: name: ${why}`, { field: "name" });
    }
    byName.set(t.name, deepFreeze(t));
  }
  const all = [...[...BUILTIN_TEMPLATES].sort((a, b) => a.name.localeCompare(b.name)), ...users];
  return { list: () => all, get: (name) => byName.get(name) };
}

/**
 * Reads and validates every `*.json` in `<dataDir>/templates/` (none when the directory does
 * not exist), in name order. Throws INVALID_ARGUMENT on the first bad file, its message
 * starting `templates/NAME.json: ` and the field path; other files in the directory are ignored.
 */
export async function loadUserTemplates(dataDir: string): Promise<Template[]> {
  const dir = join(dataDir, "templates");
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(".json")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: Template[] = [];
  for (const name of names) {
    const source = `templates/${name}`;
    if (!TEMPLATE_NAME.test(name.slice(0, -".json".length))) {
      throw new SecretsError(
        "invalid_argument",
        `${source}: the file name must be NAME.json with NAME matching ${TEMPLATE_NAME.source}`,
      );
    }
    const path = join(dir, name);
    const st = await stat(path);
    if (st.size > TEMPLATE_LIMITS.maxFileBytes) {
      const msg = `${source}: is ${st.size} bytes; the limit is ${TEMPLATE_LIMITS.maxFileBytes}`;
      throw new SecretsError("invalid_argument", msg);
    }
    out.push(parseTemplateFile(await readFile(path, "utf8"), source, name));
  }
  createTemplateRegistry(out); // refuses a built-in's name here, at load, naming the file
  return out;
}

// --- internal ---

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
