/**
 * Manifest validation (issue #11): a good manifest comes back in its stored form with defaults
 * filled in; every bad one is refused whole with INVALID_ARGUMENT whose message starts with the
 * path of the offending field.
 */
import { describe, expect, test } from "vitest";
import { isSecretsError } from "../../errors.js";
import { parseManifest, validateManifest } from "./validate.js";

/** One entry of every class and generator. */
function good(): Record<string, unknown> {
  return {
    name: "web-app",
    description: "what the web VMs need",
    entries: [
      {
        id: "session_key",
        class: "per_install_generated",
        env: "SESSION_KEY",
        generator: { type: "random", length: 64, charset: "base64url" },
        rotate: "0 3 * * 0",
      },
      {
        id: "install_id",
        class: "per_install_generated",
        env: "INSTALL_ID",
        generator: { type: "uuid" },
      },
      {
        id: "api_token",
        class: "user_prompt",
        env: "API_TOKEN",
        label: "Provider API token",
        description: "from the provider's console",
        format: "tok_[A-Za-z0-9]{24}",
      },
      { id: "smtp_password", class: "user_prompt", env: "SMTP_PASSWORD", required: false },
      {
        id: "db_password",
        class: "remote_fetch",
        env: "DB_PASSWORD",
        fetch: { command: ["vault", "kv", "get", "-field=password", "secret/db"] },
      },
      {
        id: "tls_key",
        class: "remote_fetch",
        env: "TLS_KEY",
        fetch: { file: "/run/credentials/tls.key", intervalMs: 60_000, timeoutMs: 500 },
      },
      {
        id: "broker_secret",
        class: "infrastructure",
        generator: { type: "random", length: 32, charset: "hex" },
      },
      {
        id: "upstream_key",
        class: "infrastructure",
        fetch: { command: ["/usr/bin/op", "read", "op://x/y"] },
      },
      { id: "operator_note", class: "infrastructure" },
    ],
  };
}

/** The INVALID_ARGUMENT message for `m`, which must be refused. */
function refusal(m: unknown): string {
  try {
    validateManifest(m);
  } catch (err) {
    if (!isSecretsError(err) || err.code !== "invalid_argument") throw err;
    expect(err.message.startsWith(`${err.field}: `)).toBe(true);
    return err.message;
  }
  throw new Error("expected a refusal");
}

const UUID = { type: "uuid" };
const DAILY = "0 0 * * *";

/** `good()` with `patch` over its top level; a key set to undefined is removed (JSON round trip). */
function top(patch: Record<string, unknown>): unknown {
  return JSON.parse(JSON.stringify({ ...good(), ...patch }));
}

/** `good()` with `patch` over entry `i`; a key set to undefined is removed. */
function E(i: number, patch: Record<string, unknown>): Record<string, unknown> {
  const m = good();
  const entries = m.entries as Record<string, unknown>[];
  entries[i] = { ...entries[i], ...patch };
  return JSON.parse(JSON.stringify(m));
}

/** Entry `i` with this generator. */
const G = (i: number, generator: Record<string, unknown>) => E(i, { generator });
/** Entry `i` with this fetch. */
const F = (i: number, fetch: Record<string, unknown>) => E(i, { fetch });

describe("a good manifest", () => {
  test("comes back in its stored form, defaults filled in, JSON round-trip stable", () => {
    const m = validateManifest(good());
    expect(m.name).toBe("web-app");
    expect(m.entries.map((e) => e.id)).toEqual(
      (good().entries as { id: string }[]).map((e) => e.id),
    );
    expect(m.entries[0]).toEqual({
      id: "session_key",
      class: "per_install_generated",
      env: "SESSION_KEY",
      description: "",
      required: true,
      generator: { type: "random", length: 64, charset: "base64url" },
      rotate: "0 3 * * 0",
    });
    expect(m.entries[3]).toEqual({
      id: "smtp_password",
      class: "user_prompt",
      env: "SMTP_PASSWORD",
      description: "",
      label: "smtp_password",
      required: false,
    });
    expect(m.entries[4]?.fetch).toEqual({
      command: ["vault", "kv", "get", "-field=password", "secret/db"],
      intervalMs: 300_000,
      timeoutMs: 10_000,
    });
    expect(m.entries[5]?.fetch).toEqual({
      file: "/run/credentials/tls.key",
      intervalMs: 60_000,
      timeoutMs: 500,
    });
    expect(m.entries[8]).toEqual({
      id: "operator_note",
      class: "infrastructure",
      description: "",
      required: true,
    });
    expect(JSON.parse(JSON.stringify(m))).toEqual(m);
    expect(validateManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  test("parseManifest takes JSON text; the charset defaults to alnum", () => {
    const m = parseManifest(
      JSON.stringify({
        name: "a",
        entries: [
          {
            id: "k",
            class: "per_install_generated",
            env: "K",
            generator: { type: "random", length: 8 },
          },
        ],
      }),
    );
    expect(m).toEqual({
      name: "a",
      description: "",
      entries: [
        {
          id: "k",
          class: "per_install_generated",
          env: "K",
          description: "",
          required: true,
          generator: { type: "random", length: 8, charset: "alnum" },
        },
      ],
    });
  });
});

describe("text", () => {
  test("leading whitespace and a byte order mark are fine", () => {
    const text = `\uFEFF\n  ${JSON.stringify(good(), null, 2)}\n`;
    expect(parseManifest(text)).toEqual(validateManifest(good()));
  });

  test.each([
    [
      "name: web\nentries: []\n",
      /^manifest: JSON is expected: a manifest is a JSON object \(YAML is not supported\)$/,
    ],
    ["[]", /^manifest: JSON is expected/],
    ['{"name": "a",\n "entries": 1 x}', /^manifest: is not valid JSON at line 2 column 15: /],
    ['{"name": "hunter2" x}', /^manifest: is not valid JSON/],
  ])("refuses %j", (text, message) => {
    expect(() => parseManifest(text)).toThrow(message);
  });

  test("a JSON error never quotes the text; source names the document", () => {
    expect(() => parseManifest('{"a": "hunter2-secret" }}', "web.json")).toThrow(/^web\.json: /);
    expect(() => parseManifest('{"a": "hunter2-secret" }}')).not.toThrow(/hunter2/);
    expect(() => parseManifest('{"a": hunter2 }')).not.toThrow(/hunter2/);
  });

  test("over 256 KiB is refused before parsing", () => {
    const text = `{"name": "a", "description": "${"x".repeat(256 * 1024)}"}`;
    expect(() => parseManifest(text)).toThrow(/^manifest: is 262\d+ bytes; the limit is 262144$/);
  });
});

describe("a bad manifest is refused whole, naming the field", () => {
  // [message the refusal starts with, manifest]
  test.each<[string, unknown]>([
    ["manifest: must be an object (got array)", []],
    ["owner: unknown key (known: name, description, entries)", top({ owner: "x" })],
    ["name: is required (a string)", top({ name: undefined })],
    ["name: 'Web_App' must match ^[a-z][a-z0-9-]{0,23}$", top({ name: "Web_App" })],
    ["description: must be a string (got number)", top({ description: 3 })],
    ["entries: must have 1 to 256 entries (got 0)", top({ entries: [] })],
    ["entries: must have 1 to 256 entries (got 257)", top({ entries: Array(257).fill({}) })],
    ["entries: must be an array (got object)", top({ entries: {} })],
    ["entries[0]: must be an object (got null)", top({ entries: [null] })],
    ["entries[0].colour: unknown key (known: id, class, env,", E(0, { colour: "red" })],
    ["entries[1].__proto__: unknown key", E(1, JSON.parse(`{"__proto__": 1}`))],
    ["entries[2].id: 'API' must match ^[a-z][a-z0-9_]{0,31}$", E(2, { id: "API" })],
    ["entries[3].id: duplicate id 'session_key' (also entries[0])", E(3, { id: "session_key" })],
    [
      "entries[1].class: unknown class 'foo' (known: per_install_generated, user_prompt, infrastructure, remote_fetch)",
      E(1, { class: "foo" }),
    ],
    ["entries[2].env: is required for a user_prompt entry", E(2, { env: undefined })],
    ["entries[2].env: 'api-token' must match", E(2, { env: "api-token" })],
    ["entries[4].env: duplicate env var INSTALL_ID (also entries[1])", E(4, { env: "INSTALL_ID" })],
    [
      "entries[2].env: LD_PRELOAD changes how programs load or run on the VM, so a manifest cannot target it",
      E(2, { env: "LD_PRELOAD" }),
    ],
    ["entries[2].env: PATH changes how programs", E(2, { env: "PATH" })],
    [
      "entries[6].env: an infrastructure entry never reaches a VM: remove env",
      E(6, { env: "BROKER" }),
    ],
    [
      "entries[0].description: is 1025 characters; the limit is 1024",
      E(0, { description: "x".repeat(1025) }),
    ],
    ["entries[0].description: must not contain control", E(0, { description: "a\u001b[2J" })],
    ["entries[0].label: only a user_prompt entry has a label", E(0, { label: "x" })],
    ["entries[2].label: must not contain control characters", E(2, { label: "a\nb" })],
    ["entries[2].label: must not be empty", E(2, { label: "" })],
    ["entries[2].format: unsafe regex: nested quantifier", E(2, { format: "(\\w+\\s?)*" })],
    ["entries[2].format: invalid regex", E(2, { format: "[a-" })],
    ["entries[3].required: must be a boolean (got string)", E(3, { required: "yes" })],
    [
      "entries[0].generator: is required for a per_install_generated entry",
      E(0, { generator: undefined }),
    ],
    ["entries[2].generator: a user_prompt entry has no generator", E(2, { generator: UUID })],
    ["entries[0].generator.length: must be 8 to 4096", G(0, { type: "random", length: 4 })],
    ["entries[0].generator.length: must be 8 to 4096", G(0, { type: "random", length: 4097 })],
    [
      "entries[0].generator.length: must be an integer 8 to 4096 (got string)",
      G(0, { type: "random", length: "64" }),
    ],
    ["entries[0].generator.length: is required (an integer", G(0, { type: "random" })],
    [
      "entries[0].generator.type: unknown generator type 'words' (known: random, uuid)",
      G(0, { type: "words" }),
    ],
    [
      "entries[0].generator.charset: unknown charset 'ascii' (known: alnum, hex, base64, base64url)",
      G(0, { type: "random", length: 8, charset: "ascii" }),
    ],
    ["entries[1].generator.length: a uuid generator has none", G(1, { type: "uuid", length: 36 })],
    ["entries[1].generator.version: unknown key", G(1, { type: "uuid", version: 4 })],
    ["entries[4].fetch: is required for a remote_fetch entry", E(4, { fetch: undefined })],
    ["entries[0].fetch: a per_install_generated entry has no fetch", F(0, { file: "/x" })],
    ["entries[4].generator: a remote_fetch entry has no generator", E(4, { generator: UUID })],
    ["entries[7].fetch: an entry is generated or fetched, not both", E(7, { generator: UUID })],
    ["entries[4].fetch: needs exactly one of command or file", F(4, {})],
    [
      "entries[4].fetch: needs exactly one of command or file",
      F(4, { command: ["a"], file: "/x" }),
    ],
    [
      "entries[4].fetch.command: must be an array of strings (argv) (got string)",
      F(4, { command: "vault kv get" }),
    ],
    ["entries[4].fetch.command: must have 1 to 256 elements (got 0)", F(4, { command: [] })],
    ["entries[4].fetch.command[1]: must be a string (got number)", F(4, { command: ["cat", 3] })],
    ["entries[4].fetch.command[1]: must be 1 to 4096 characters", F(4, { command: ["cat", ""] })],
    ["entries[4].fetch.command[1]: must be 1 to 4096 characters", F(4, { command: ["a", "\0"] })],
    [
      "entries[4].fetch.command[0]: must be an absolute path or a bare program name",
      F(4, { command: ["./fetch.sh"] }),
    ],
    ["entries[4].fetch.command[0]: must be an absolute path", F(4, { command: [".."] })],
    [
      "entries[4].fetch.command[0]: contains whitespace; there is no shell",
      F(4, { command: ["vault kv get x"] }),
    ],
    ["entries[5].fetch.file: must be an absolute path", F(5, { file: "creds/tls.key" })],
    [
      "entries[5].fetch.intervalMs: must be 1000 to 604800000",
      F(5, { file: "/x", intervalMs: 999 }),
    ],
    [
      "entries[5].fetch.intervalMs: must be 1000 to 604800000",
      F(5, { file: "/x", intervalMs: 604_800_001 }),
    ],
    ["entries[5].fetch.timeoutMs: must be 100 to 60000", F(5, { file: "/x", timeoutMs: 99 })],
    ["entries[5].fetch.timeoutMs: must be 100 to 60000", F(5, { file: "/x", timeoutMs: 60_001 })],
    [
      "entries[5].fetch.timeoutMs: 2000 is longer than intervalMs 1000",
      F(5, { file: "/x", intervalMs: 1000, timeoutMs: 2000 }),
    ],
    ["entries[5].fetch.retries: unknown key", F(5, { file: "/x", retries: 3 })],
    ["entries[0].rotate: not a valid cron expression", E(0, { rotate: "every sunday" })],
    [
      "entries[0].rotate: not a valid cron expression: expected 5 or 6 fields but got 4",
      E(0, { rotate: "* * * *" }),
    ],
    [
      "entries[0].rotate: not a valid cron expression: 99 is a invalid expression for minute",
      E(0, { rotate: "99 * * * *" }),
    ],
    ["entries[0].rotate: must be a string (got number)", E(0, { rotate: 5 })],
    ["entries[2].rotate: only a generated or fetched entry can rotate", E(2, { rotate: DAILY })],
    ["entries[8].rotate: only a generated or fetched entry can rotate", E(8, { rotate: DAILY })],
  ])("%s", (message, m) => {
    expect(refusal(m).startsWith(message)).toBe(true);
  });

  test("rotate takes 5 or 6 fields, on generated and fetched entries of any class", () => {
    for (const [i, rotate] of [
      [0, "*/5 * * * * *"],
      [4, "@daily"],
      [6, "0 0 1 * *"],
    ] as const) {
      expect(validateManifest(E(i, { rotate })).entries[i]?.rotate).toBe(rotate);
    }
  });

  test("the first problem wins, in entry order", () => {
    const m = E(1, { class: "foo" });
    (m.entries as Record<string, unknown>[])[4] = { id: "BAD" };
    expect(refusal(m)).toMatch(/^entries\[1\]\.class: /);
  });

  test("refusals never repeat a description, a label, an argument or a file path", () => {
    const secretish = "hunter2-SECRET";
    for (const m of [
      E(4, { fetch: { command: [`${secretish} x`] } }),
      E(4, { fetch: { command: [`./${secretish}`] } }),
      E(4, { fetch: { command: ["curl", `${secretish}\0`] } }),
      E(5, { fetch: { file: secretish } }),
      E(2, { label: `${secretish}\n` }),
      E(2, { description: `${secretish}\u0007` }),
    ]) {
      expect(refusal(m)).not.toContain("hunter2");
    }
  });

  test("keys and names in messages are clipped and quoted when not printable", () => {
    const m = E(0, { [`x\n${"y".repeat(100)}`]: 1 });
    expect(refusal(m)).toMatch(/^entries\[0\]\."x\\nyyy+…": unknown key/);
  });
});
