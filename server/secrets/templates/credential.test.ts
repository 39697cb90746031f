/**
 * validateCredential and fieldsToAsk (issue #13): conditional fields enforced both ways, types,
 * defaults, every problem collected, and no error ever carrying a value, for chosen inputs and
 * (property test) arbitrary ones.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { fieldsToAsk, validateCredential } from "./credential.js";
import { BUILTIN_TEMPLATES, createTemplateRegistry } from "./registry.js";
import type { Template } from "./schema.js";
import { validateTemplate } from "./validate-template.js";

const reg = createTemplateRegistry();
const get = (name: string): Template => {
  const t = reg.get(name);
  if (t === undefined) throw new Error(name);
  return t;
};
const UUID = "5e7f1f8e-2b0a-4c4e-9d1a-3f6b8c2d9e01";

/** One field of each type, for type checks. */
const TYPES = validateTemplate(
  {
    name: "types",
    title: "one field per type",
    category: "other",
    fields: [
      { key: "t", type: "text", required: false },
      { key: "u", type: "url", required: false },
      { key: "p", type: "port", required: false },
      { key: "j", type: "json", required: false },
      { key: "s", type: "secret", required: false },
    ],
  },
  "types.json",
);

describe("conditional fields", () => {
  const pve = get("proxmox");
  const url = "https://pve.example.com:8006";

  test("proxmox api_token: token fields required, password fields refused", () => {
    expect(validateCredential(pve, { url })).toEqual({
      ok: false,
      errors: [
        { path: "token_id", reason: "is required" },
        { path: "token_secret", reason: "is required" },
      ],
    });
    const r = validateCredential(pve, {
      url,
      token_id: "ci@pve!t1",
      token_secret: UUID,
      password: "Zq-pw-77",
    });
    expect(r).toEqual({
      ok: false,
      errors: [
        { path: "password", reason: "applies only when auth_method is password: remove it" },
      ],
    });
  });

  test("proxmox password: user and password required, token fields refused; realm defaults to pam", () => {
    expect(validateCredential(pve, { url, auth_method: "password" })).toEqual({
      ok: false,
      errors: [
        { path: "user", reason: "is required" },
        { path: "password", reason: "is required" },
      ],
    });
    const bad = validateCredential(pve, {
      url,
      auth_method: "password",
      user: "root",
      password: "pw",
      token_secret: UUID,
    });
    expect(bad).toEqual({
      ok: false,
      errors: [
        { path: "token_secret", reason: "applies only when auth_method is api_token: remove it" },
      ],
    });
    const r = validateCredential(pve, {
      url,
      auth_method: "password",
      user: "root",
      password: "Zq-pw-77",
    });
    expect(r).toEqual({
      ok: true,
      secret: { password: "Zq-pw-77" },
      visible: { url, auth_method: "password", user: "root", realm: "pam", insecure: "false" },
      env: [
        ["PROXMOX_URL", "url"],
        ["PROXMOX_USER", "user"],
        ["PROXMOX_REALM", "realm"],
        ["PROXMOX_PASSWORD", "password"],
        ["PROXMOX_INSECURE", "insecure"],
      ],
    });
  });

  test("postgres url mode maps DATABASE_URL only; the fields of the other mode are refused", () => {
    const url = "postgres://app:Zq-pw-77@db:5432/app";
    const r = validateCredential(get("postgres"), { mode: "url", url });
    expect(r).toEqual({
      ok: true,
      secret: { url },
      visible: { mode: "url" },
      env: [["DATABASE_URL", "url"]],
    });
    const bad = validateCredential(get("postgres"), { mode: "url", url, host: "db", port: "5432" });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors.map((e) => e.path)).toEqual(["host", "port"]);
    const wrongMode = validateCredential(get("postgres"), { url });
    expect(!wrongMode.ok && wrongMode.errors.map((e) => e.path)).toEqual([
      "url",
      "host",
      "database",
      "user",
      "password",
    ]);
  });

  test("an empty string counts as not given: it takes the default, and an inactive field may be empty", () => {
    const r = validateCredential(pve, {
      url,
      auth_method: "",
      token_id: "ci@pve!t1",
      token_secret: UUID,
      password: "",
    });
    expect(r).toMatchObject({ ok: true, visible: { auth_method: "api_token" } });
  });
});

describe("fieldsToAsk", () => {
  test("asks in order and follows the answer to a select", () => {
    const pve = get("proxmox");
    const keys = (a: Record<string, string>) => fieldsToAsk(pve, a).map((f) => f.key);
    expect(keys({})).toEqual(["url", "auth_method", "token_id", "token_secret", "insecure"]);
    expect(keys({ url: "https://pve:8006", auth_method: "password" })).toEqual([
      "user",
      "realm",
      "password",
      "insecure",
    ]);
    expect(keys({ url: "https://pve:8006", auth_method: "" })).toEqual([
      "token_id",
      "token_secret",
      "insecure",
    ]);
    expect(
      keys({
        url: "x",
        auth_method: "password",
        user: "root",
        realm: "",
        password: "pw",
        insecure: "",
      }),
    ).toEqual([]);
  });

  test("a prompt loop answering each field in turn ends with a valid credential", () => {
    const answers: Record<string, string> = {};
    const reply: Record<string, string> = {
      mode: "url",
      url: "postgresql://app:pw@db/app",
    };
    for (let i = 0; i < 20; i++) {
      const next = fieldsToAsk(get("postgres"), answers)[0];
      if (next === undefined) break;
      answers[next.key] = reply[next.key] ?? "";
    }
    expect(Object.keys(answers)).toEqual(["mode", "url"]);
    expect(validateCredential(get("postgres"), answers).ok).toBe(true);
  });
});

describe("types and input", () => {
  test.each([
    ["t", "two\nlines", "must be one line without control characters"],
    ["u", "//host/path", "must be an absolute URL (https://host[:port][/path])"],
    ["u", "file:///etc/passwd", "must be an http:// or https:// URL"],
    ["u", "https://user:Zq-pw-77@host/", "must not contain user:password@"],
    ["u", "https://host/a b", "must be a URL without spaces or control characters"],
    ["p", "0", "must be a port number 1 to 65535"],
    ["p", "80a", "must be a port number 1 to 65535"],
    ["p", "+80", "must be a port number 1 to 65535"],
    ["j", "{'a': 1}", "must be valid JSON"],
    ["s", "a\0b", "must not contain NUL"],
    ["s", "x".repeat(64 * 1024 + 1), "is 65537 bytes; the limit is 65536"],
  ])("%s refuses %j", (key, value, reason) => {
    expect(validateCredential(TYPES, { [key]: value })).toEqual({
      ok: false,
      errors: [{ path: key, reason }],
    });
  });

  test("accepts what each type allows", () => {
    const input = {
      t: "x y",
      u: "http://10.0.0.1:8080/api",
      p: "65535",
      j: "[1,2]",
      s: "multi\nline",
    };
    expect(validateCredential(TYPES, input)).toMatchObject({
      ok: true,
      secret: { s: "multi\nline" },
    });
  });

  test("unknown keys are refused by name, all problems at once", () => {
    const r = validateCredential(get("openai"), { api_key: "nope", apikey: "Zq-distinct-1" });
    expect(r).toEqual({
      ok: false,
      errors: [
        {
          path: "apikey",
          reason: "unknown field of template openai (known: api_key, organization, base_url)",
        },
        {
          path: "api_key",
          reason:
            "does not match the format: an OpenAI key starts with sk- (sk-proj-…, sk-svcacct-…)",
        },
      ],
    });
  });
});

describe("formats of user templates run in the sandbox", () => {
  test("a polynomial format gives up with 'format check timed out' instead of hanging", () => {
    const slow = validateTemplate(
      {
        name: "slow",
        title: "a format with a cubic worst case",
        category: "other",
        fields: [{ key: "code", type: "text", format: "[0-9]*[0-9]*[0-9]*x" }],
      },
      "templates/slow.json",
    );
    const started = performance.now();
    const r = validateCredential(slow, { code: "1".repeat(60_000) });
    expect(r).toEqual({ ok: false, errors: [{ path: "code", reason: "format check timed out" }] });
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("no error carries a value", () => {
  const DISTINCT = "Zq7-DISTINCTIVE-value-9xK";

  test("every field of every built-in, given a distinctive wrong value", () => {
    for (const t of BUILTIN_TEMPLATES) {
      for (const f of t.fields) {
        for (const v of [DISTINCT, `${DISTINCT}\n${DISTINCT}`, `{"type":"${DISTINCT}"}`]) {
          const r = validateCredential(t, { [f.key]: v });
          expect(JSON.stringify(r.ok ? [] : r.errors), `${t.name}.${f.key}`).not.toContain(
            DISTINCT,
          );
        }
      }
    }
  });

  test("property: never throws, and no error message contains an input value", () => {
    const templates = [...BUILTIN_TEMPLATES, TYPES];
    const arb = fc.record({
      t: fc.integer({ min: 0, max: templates.length - 1 }),
      known: fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 80 })), { maxLength: 8 }),
      unknown: fc.dictionary(fc.stringMatching(/^[a-z_]{1,12}$/), fc.string({ maxLength: 40 }), {
        maxKeys: 3,
      }),
    });
    fc.assert(
      fc.property(arb, ({ t: ti, known, unknown }) => {
        const t = templates[ti] as Template;
        const input: Record<string, string> = {};
        for (const [k, v] of Object.entries(unknown)) input[k] = `Zq${v}`;
        // Values carry a marker so a short value cannot match a word of a message by chance.
        for (const [i, v] of known) input[t.fields[i % t.fields.length]?.key ?? "x"] = `Zq${v}`;
        const r = validateCredential(t, input);
        if (r.ok) return;
        const text = JSON.stringify(r.errors);
        for (const v of Object.values(input)) {
          expect(
            text.includes(JSON.stringify(v).slice(1, -1)) ||
              r.errors.some((e) => `${e.path}${e.reason}`.includes(v)),
          ).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });
});
