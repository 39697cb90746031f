import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { out } from "../output.js";
import { readManifestText } from "./manifest.js";

/** What the template needs of a user_prompt entry. */
interface Prompted {
  id: string;
  env: string;
  label: string;
  description: string;
  format: string;
  required: boolean;
}

/**
 * `manifest template FILE [--format env|json]`: a skeleton of the manifest's user_prompt
 * entries to fill in, with each one's label, description and format; `manifest prompt NAME
 * --from FILE` reads it back. Local: it reads the file only as far as the template needs
 * (secretsd validates a manifest when it is planned or applied). It never calls secretsd; it
 * is a client command for the strict command-line check the others have (`--json` is
 * `--format json`).
 *
 * - env: `# label — description (format: F)` then `ENV=`, one block per entry.
 * - json: `{ "<id>": "", …, "_descriptions": { "<id>": { label, description, env, format,
 *   required } }, "_manifest": NAME }`.
 */
export default defineClientCommand({
  meta: {
    name: "template",
    description: "print a skeleton of a manifest's user_prompt entries (local; no daemon)",
  },
  args: {
    file: {
      type: "positional",
      required: true,
      description: "the manifest, JSON ('-' reads stdin)",
    },
    format: { type: "string", valueHint: "env|json", description: "output format (default env)" },
  },
  async run({ args, json }) {
    const format = args.format ?? (json ? "json" : "env");
    if (json && format !== "json") throw new UsageError("--json is --format json");
    if (format !== "env" && format !== "json") {
      throw new UsageError("--format must be env or json");
    }
    const { name, entries } = promptedEntries(args.file, await readManifestText(args.file));
    out(format === "env" ? envTemplate(name, entries) : jsonTemplate(name, entries));
  },
});

// --- internal ---

function promptedEntries(file: string, text: string): { name: string; entries: Prompted[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, "")); // an editor's byte order mark
  } catch {
    // JSON.parse's message quotes the text; a manifest holds no value, but stay terse.
    throw new Error(`${file}: is not valid JSON`);
  }
  if (!isObject(doc)) throw new Error(`${file}: a manifest is a JSON object`);
  if (typeof doc.name !== "string" || doc.name === "") {
    throw new Error(`${file}: name: must be a non-empty string`);
  }
  if (!Array.isArray(doc.entries)) throw new Error(`${file}: entries: must be an array`);
  const entries: Prompted[] = [];
  doc.entries.forEach((e: unknown, i: number) => {
    if (!isObject(e)) throw new Error(`${file}: entries[${i}]: must be an object`);
    if (e.class !== "user_prompt") return;
    const str = (field: string, fallback = ""): string => {
      const v = e[field];
      if (v === undefined) return fallback;
      if (typeof v !== "string")
        throw new Error(`${file}: entries[${i}].${field}: must be a string`);
      return v;
    };
    const id = str("id");
    if (id === "") throw new Error(`${file}: entries[${i}].id: is required`);
    const env = str("env");
    if (env === "") throw new Error(`${file}: entries[${i}].env: is required`);
    entries.push({
      id,
      env,
      label: str("label", id),
      description: str("description"),
      format: str("format"),
      required: e.required !== false,
    });
  });
  return { name: doc.name, entries };
}

function envTemplate(name: string, entries: readonly Prompted[]): string {
  const lines = [
    `# user_prompt entries of manifest ${oneLine(name)}: fill in the values, then run`,
    `#   secretsctl manifest prompt ${oneLine(name)} --from THIS_FILE`,
    "# (an empty value is left as it is)",
  ];
  for (const e of entries) {
    const about = [oneLine(e.label)];
    if (e.description !== "") about.push(` — ${oneLine(e.description)}`);
    if (e.format !== "") about.push(` (format: ${oneLine(e.format)})`);
    about.push(e.required ? " [required]" : " [optional]");
    lines.push("", `# ${about.join("")}`, `${e.env}=`);
  }
  return `${lines.join("\n")}\n`;
}

function jsonTemplate(name: string, entries: readonly Prompted[]): string {
  const doc: Record<string, unknown> = {};
  for (const e of entries) doc[e.id] = "";
  doc._descriptions = Object.fromEntries(
    entries.map((e) => [
      e.id,
      {
        label: e.label,
        description: e.description,
        env: e.env,
        format: e.format,
        required: e.required,
      },
    ]),
  );
  doc._manifest = name;
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Text for a one-line comment: control characters (a newline would end it) become spaces. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " ");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
