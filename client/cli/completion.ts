/**
 * Shell completion, the shared part: the live command tree (completion-tree.ts) turned into
 * what a completion script needs per command path (subcommands, flags, which flags take a
 * value, and what each value or positional completes to), plus the table saying which
 * positionals and flags name a secret, VM, group, token, manifest or OAuth credential. Those
 * names come from secretsd at tab time (`secretsctl __complete KIND`); everything else is
 * written into the script. The shell-specific renderers are completion-{bash,zsh,fish}.ts.
 */

import type { CommandInfo } from "./completion-tree.js";
import { walkCommands } from "./completion-tree.js";
import { connectionArgs } from "./connect.js";

/** What `__complete KIND` can list: names secretsd holds. */
export const NAME_KINDS = ["secret", "vm", "group", "token", "manifest", "oauth"] as const;

/** The shells `secretsctl completion` writes a script for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/**
 * What a value completes to, encoded as one shell word so the scripts can `case` on it:
 * `names:KIND` (from secretsd), `file`, `scope` (global, host, group:NAME, vm:NAME),
 * `words:A,B,C` (fixed values), or `none`.
 */
export type ValueKind = string;

/** One flag as the scripts see it. */
export interface FlagSpec {
  /** `--name`, then each alias (`-n` or `--alias`). */
  spellings: string[];
  takesValue: boolean;
  value: ValueKind;
  description: string;
}

/** One command path as the scripts see it. */
export interface PathSpec {
  /** Words after `secretsctl`, space-separated; "" is the root. */
  path: string;
  description: string;
  /** Visible subcommands; aliases map to the canonical name. */
  subcommands: { name: string; aliases: string[]; description: string }[];
  flags: FlagSpec[];
  /** What the 1st, 2nd, … positional completes to. */
  positionals: ValueKind[];
}

/**
 * The completion spec of every visible command, parents first.
 * @throws Error when the command tree is not registered (main.ts does it).
 */
export async function completionSpec(): Promise<PathSpec[]> {
  const all = await walkCommands();
  const visible = all.filter((c) => !c.hidden && !c.path.some((w) => w.startsWith("__")));
  const byPath = new Map(visible.map((c) => [c.path.join(" "), c]));
  return visible.map((c) => specOf(c, byPath));
}

/** The text for a description in a script: one line, no quotes or backslashes to escape. */
export function plain(text: string): string {
  return text.replace(UNSAFE, " ").replace(/\s+/g, " ").trim();
}

// --- internal ---

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters would break a script
const UNSAFE = /[\u0000-\u001f\u007f'"\\`$]/g;

/** Positionals that name something secretsd holds, by `PATH ARG` (anything else: none). */
const POSITIONAL_KINDS: Record<string, ValueKind> = {
  "get name": "names:secret",
  "update name": "names:secret",
  "remove name": "names:secret",
  "rotate name": "names:secret",
  "versions name": "names:secret",
  "rollback name": "names:secret",
  "export vm": "names:vm",
  "import file": "file",
  "vm remove name": "names:vm",
  "vm token name": "names:vm",
  "vm revoke name": "names:vm",
  "vm groups name": "names:vm",
  "group remove name": "names:group",
  "token revoke name": "names:token",
  "manifest plan file": "file",
  "manifest apply file": "file",
  "manifest validate file": "file",
  "manifest template file": "file",
  "manifest prompt name": "names:manifest",
  "manifest show name": "names:manifest",
  "manifest remove name": "names:manifest",
  "manifest status name": "names:manifest",
  "oauth login name": "names:oauth",
  "oauth refresh name": "names:oauth",
  "oauth logout name": "names:oauth",
  "completion shell": `words:${SHELLS.join(",")}`,
};

/** Flags whose value names something, by flag name in any command… */
const FLAG_KINDS: Record<string, ValueKind> = {
  vm: "names:vm",
  group: "names:group",
  secret: "names:secret",
  scope: "scope",
  socket: "file",
  "token-file": "file",
  ca: "file",
  from: "file",
  "from-file": "file",
  dir: "file",
  bundle: "file",
  "bundle-ca": "file",
  "tls-dir": "file",
};

/** …unless the command says otherwise, by `PATH --FLAG`. */
const FLAG_KINDS_AT: Record<string, ValueKind> = {
  "vm groups --add": "names:group",
  "vm groups --remove": "names:group",
  "list --scope": "scope",
};

/** The options any command takes, also before its name (main.ts moves them). */
const GLOBAL_FLAGS: FlagSpec[] = [
  ...Object.entries(connectionArgs).map(([name, def]) => ({
    spellings: [`--${name}`],
    takesValue: def.type !== "boolean",
    value: FLAG_KINDS[name] ?? "none",
    description: def.description,
  })),
  { spellings: ["--json"], takesValue: false, value: "none", description: "print JSON" },
];

const HELP_FLAG: FlagSpec = {
  spellings: ["--help", "-h"],
  takesValue: false,
  value: "none",
  description: "show help",
};

function specOf(c: CommandInfo, byPath: Map<string, CommandInfo>): PathSpec {
  const path = c.path.join(" ");
  const subcommands = c.subcommands
    .filter((s) => !s.hidden && !s.name.startsWith("__"))
    .map((s) => ({
      name: s.name,
      aliases: s.aliases,
      description: byPath.get([...c.path, s.name].join(" "))?.description ?? "",
    }));
  const flags =
    c.subcommands.length > 0
      ? [...GLOBAL_FLAGS, HELP_FLAG]
      : [
          ...c.flags.map((f) => ({
            spellings: [
              `--${f.name}`,
              ...f.aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)),
            ],
            takesValue: f.type !== "boolean",
            value:
              f.type === "enum"
                ? `words:${f.options.join(",")}`
                : (FLAG_KINDS_AT[`${path} --${f.name}`] ?? FLAG_KINDS[f.name] ?? "none"),
            description: f.description,
          })),
          HELP_FLAG,
        ];
  const positionals = c.positionals.map((p) => POSITIONAL_KINDS[`${path} ${p.name}`] ?? "none");
  return { path, description: c.description, subcommands, flags, positionals };
}
