/**
 * User templates (issue #13): a good file loads in its stored form; each broken one is refused
 * whole with INVALID_ARGUMENT whose message starts with the file and the field path; a file may
 * not take a built-in's name.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { isSecretsError } from "../../errors.js";
import { validateCredential } from "./credential.js";
import { createTemplateRegistry, loadUserTemplates } from "./registry.js";
import { parseTemplateFile, validateTemplate } from "./validate-template.js";

/** Parsed JSON, broken key by key below: typed loosely on purpose, as a file's content is. */
// biome-ignore lint/suspicious/noExplicitAny: a template file's content, before validation
type Doc = Record<string, any>;

/** A user template with a conditional field and an HTTP test per auth method. */
function good(): Doc {
  return {
    name: "acme",
    title: "Acme API",
    category: "other",
    fields: [
      { key: "url", type: "url", default: "https://api.acme.test", env: "ACME_URL" },
      { key: "auth_method", type: "select", options: ["token", "password"], default: "token" },
      {
        key: "token",
        type: "secret",
        format: "acme_[a-z0-9]{16}",
        env: "ACME_TOKEN",
        when: { auth_method: "token" },
      },
      { key: "user", type: "text", env: "ACME_USER", when: { auth_method: ["password"] } },
      { key: "password", type: "secret", env: "ACME_PASSWORD", when: { auth_method: "password" } },
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{url}",
        path: "/v1/me",
        auth: { type: "header", name: "Authorization", value: "Bearer {token}" },
        okStatus: [200],
        when: { auth_method: "token" },
      },
      {
        kind: "http",
        method: "GET",
        baseUrl: "{url}",
        path: "/v1/me",
        auth: { type: "basic", userField: "user", passwordField: "password" },
        okStatus: [200],
        when: { auth_method: "password" },
      },
    ],
  };
}

/** [what is broken, how to break it, the exact message]. */
const BROKEN: Array<[string, (t: Doc) => void, string]> = [
  [
    "an unknown top-level key",
    (t) => {
      t.version = 2;
    },
    "tmpl.json: version: unknown key (known: name, title, category, description, fields, tests)",
  ],
  [
    "a bad name",
    (t) => {
      t.name = "Acme";
    },
    "tmpl.json: name: 'Acme' must match ^[a-z][a-z0-9-]{0,31}$",
  ],
  [
    "an unknown category",
    (t) => {
      t.category = "crypto";
    },
    "tmpl.json: category: unknown category 'crypto' (known: ai, cloud, virtualization, source-control, database, messaging, other)",
  ],
  [
    "no fields",
    (t) => {
      t.fields = [];
    },
    "tmpl.json: fields: must have 1 to 64 elements (got 0)",
  ],
  [
    "an unknown field key",
    (t) => {
      t.fields[0].envvar = "X";
    },
    "tmpl.json: fields[0].envvar: unknown key (known: key, label, type, secret, required, default, help, options, format, formatHint, check, env, when)",
  ],
  [
    "a bad field type",
    (t) => {
      t.fields[0].type = "uri";
    },
    "tmpl.json: fields[0].type: unknown field type 'uri' (known: text, secret, select, url, port, json)",
  ],
  [
    "a required flag of the wrong type",
    (t) => {
      t.fields[3].required = "no";
    },
    "tmpl.json: fields[3].required: must be a boolean (got string)",
  ],
  [
    "a duplicate field key",
    (t) => {
      t.fields[3].key = "token";
    },
    "tmpl.json: fields[3].key: duplicate key 'token' (also fields[2])",
  ],
  [
    "a duplicate env var",
    (t) => {
      t.fields[4].env = "ACME_TOKEN";
    },
    "tmpl.json: fields[4].env: duplicate env var ACME_TOKEN (also fields[2].env)",
  ],
  [
    "a malformed env var",
    (t) => {
      t.fields[0].env = "acme-url";
    },
    "tmpl.json: fields[0].env: 'acme-url' must match ^[A-Z_][A-Z0-9_]*$ (at most 255)",
  ],
  [
    "a sensitive env var",
    (t) => {
      t.fields[0].env = "LD_PRELOAD";
    },
    "tmpl.json: fields[0].env: LD_PRELOAD changes how programs load or run on the VM, so a template cannot map to it",
  ],
  [
    "a regex that does not compile",
    (t) => {
      t.fields[2].format = "acme_[a-z";
    },
    "tmpl.json: fields[2].format: invalid regex: ",
  ],
  [
    "a regex that can backtrack exponentially",
    (t) => {
      t.fields[2].format = "(a+)+";
    },
    "tmpl.json: fields[2].format: ",
  ],
  [
    "a when naming an unknown option",
    (t) => {
      t.fields[2].when = { auth_method: "x" };
    },
    "tmpl.json: fields[2].when.auth_method: unknown option 'x' (known: token, password)",
  ],
  [
    "a when naming an unknown field",
    (t) => {
      t.fields[2].when = { mode: "token" };
    },
    "tmpl.json: fields[2].when.mode: must name an earlier field (no field 'mode')",
  ],
  [
    "a when naming a later field",
    (t) => {
      t.fields[1].when = { auth_method: "token" };
    },
    "tmpl.json: fields[1].when.auth_method: must name an earlier field (no field 'auth_method')",
  ],
  [
    "a when naming a non-select field",
    (t) => {
      t.fields[2].when = { url: "x" };
    },
    "tmpl.json: fields[2].when.url: field 'url' is not a select field",
  ],
  [
    "a select without options",
    (t) => {
      delete t.fields[1].options;
    },
    "tmpl.json: fields[1].options: is required (an array)",
  ],
  [
    "options on a text field",
    (t) => {
      t.fields[3].options = ["a"];
    },
    "tmpl.json: fields[3].options: only a select field has options",
  ],
  [
    "a default outside the options",
    (t) => {
      t.fields[1].default = "oauth";
    },
    "tmpl.json: fields[1].default: must be one of: token, password",
  ],
  [
    "a default on a secret field",
    (t) => {
      t.fields[4].default = "hunter2";
    },
    "tmpl.json: fields[4].default: a secret field has no default",
  ],
  [
    "a default that is not a URL",
    (t) => {
      t.fields[0].default = "api.acme.test";
    },
    "tmpl.json: fields[0].default: must be an absolute URL (https://host[:port][/path])",
  ],
  [
    "a secret field marked not secret",
    (t) => {
      t.fields[2].secret = false;
    },
    "tmpl.json: fields[2].secret: a secret field is always sealed: use type text",
  ],
  [
    "an unknown content check",
    (t) => {
      t.fields[2].check = "pem";
    },
    "tmpl.json: fields[2].check: unknown check 'pem' (known: gcp_service_account, kubeconfig)",
  ],
  [
    "a control character in a label",
    (t) => {
      t.fields[0].label = "URL\u001b[31m";
    },
    "tmpl.json: fields[0].label: must not contain control characters",
  ],
  [
    "an unknown test kind",
    (t) => {
      t.tests[0].kind = "ftp";
    },
    "tmpl.json: tests[0].kind: unknown test kind 'ftp' (known: http, postgres, smtp, aws_sts)",
  ],
  [
    "a placeholder naming no field",
    (t) => {
      t.tests[0].auth.value = "Bearer {api_key}";
    },
    "tmpl.json: tests[0].auth.value: {api_key} names no field",
  ],
  [
    "an unbalanced brace",
    (t) => {
      t.tests[0].path = "/v1/{me";
    },
    "tmpl.json: tests[0].path: has a '{' that does not start a {field_key} (write {{ for a brace)",
  ],
  [
    "a base URL that is not http(s)",
    (t) => {
      t.tests[0].baseUrl = "ftp://acme.test";
    },
    "tmpl.json: tests[0].baseUrl: must start with http:// or https:// and a host, or be a {url_field}",
  ],
  [
    "a status that is not HTTP",
    (t) => {
      t.tests[0].okStatus = [200, 1000];
    },
    "tmpl.json: tests[0].okStatus[1]: must be an HTTP status 100 to 599",
  ],
  [
    "a method that changes state",
    (t) => {
      t.tests[0].method = "DELETE";
    },
    "tmpl.json: tests[0].method: unknown method 'DELETE' (known: GET, HEAD, POST)",
  ],
  [
    "basic auth from a missing field",
    (t) => {
      t.tests[1].auth.passwordField = "pass";
    },
    "tmpl.json: tests[1].auth.passwordField: names no field ('pass')",
  ],
  [
    "a key another auth type uses",
    (t) => {
      t.tests[1].auth.name = "X";
    },
    "tmpl.json: tests[1].auth.name: not used by basic auth (known: type, userField, passwordField)",
  ],
  [
    "a form on a GET",
    (t) => {
      t.tests[0].form = { a: "b" };
    },
    "tmpl.json: tests[0].form: a form body needs method POST",
  ],
  [
    "a postgres test with an unknown role",
    (t) => {
      t.tests[0] = { kind: "postgres", fields: { hostname: "url" } };
    },
    "tmpl.json: tests[0].fields.hostname: unknown key (known: url, host, port, database, user, password, sslmode)",
  ],
  [
    "a header named __proto__",
    (t) => {
      t.tests[0].headers = JSON.parse('{"__proto__": "x"}');
    },
    "tmpl.json: tests[0].headers.__proto__: must be an HTTP header name",
  ],
  [
    "a postgres test without what it connects with",
    (t) => {
      t.tests[0] = { kind: "postgres", fields: { user: "user" } };
    },
    "tmpl.json: tests[0].fields: must name a field for url, or host and user",
  ],
  [
    "a test when naming an unknown option",
    (t) => {
      t.tests[1].when = { auth_method: "oauth" };
    },
    "tmpl.json: tests[1].when.auth_method: unknown option 'oauth' (known: token, password)",
  ],
];

describe("validateTemplate", () => {
  test("a good template comes back in its stored form, defaults filled in", () => {
    const t = validateTemplate(good(), "tmpl.json");
    expect(t).toMatchObject({ name: "acme", description: "", source: "tmpl.json" });
    expect(t.fields[2]).toEqual({
      key: "token",
      label: "token",
      type: "secret",
      secret: true,
      required: true,
      help: "",
      format: "acme_[a-z0-9]{16}",
      env: "ACME_TOKEN",
      when: { auth_method: ["token"] },
    });
    expect(t.tests[0]).toMatchObject({ headers: {}, when: { auth_method: ["token"] } });
  });

  test.each(BROKEN)("refuses %s, naming the file and the field path", (_what, breakIt, message) => {
    const t = good();
    breakIt(t);
    let err: unknown;
    try {
      validateTemplate(t, "tmpl.json");
    } catch (e) {
      err = e;
    }
    expect(isSecretsError(err) && err.code).toBe("invalid_argument");
    expect((err as Error).message.startsWith(message)).toBe(true);
    if (!message.endsWith(": ")) expect((err as Error).message).toBe(message);
  });

  test("the table covers at least ten distinct kinds of breakage", () => {
    expect(BROKEN.length).toBeGreaterThanOrEqual(10);
  });

  test("a default on a secret field is refused without repeating it", () => {
    const t = good();
    t.fields[4].default = "hunter2-distinctive";
    expect(() => validateTemplate(t, "x.json")).toThrow(/^(?!.*hunter2-distinctive)/s);
  });
});

describe("parseTemplateFile", () => {
  test("refuses text that is not JSON without quoting it", () => {
    expect(() =>
      parseTemplateFile('{"name": "acme", sk-ant-SECRET', "templates/acme.json", "acme.json"),
    ).toThrow(/^templates\/acme\.json: is not valid JSON \(a template is a JSON object\)$/);
  });

  test("the template's name must be the file's", () => {
    expect(() =>
      parseTemplateFile(JSON.stringify(good()), "templates/other.json", "other.json"),
    ).toThrow(
      "templates/other.json: name: 'acme' must match the file name (other.json holds template other)",
    );
  });
});

describe("loadUserTemplates", () => {
  let dir = "";
  afterEach(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
    dir = "";
  });

  async function dataDir(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), "vm-auth-templates-"));
    await mkdir(join(dir, "templates"));
    for (const [name, text] of Object.entries(files))
      await writeFile(join(dir, "templates", name), text);
    return dir;
  }

  test("no templates directory: no user templates", async () => {
    dir = await mkdtemp(join(tmpdir(), "vm-auth-templates-"));
    expect(await loadUserTemplates(dir)).toEqual([]);
  });

  test("loads *.json in name order and ignores other files; the registry lists them after the built-ins", async () => {
    const b = { ...good(), name: "beta" };
    const d = await dataDir({
      "acme.json": JSON.stringify(good()),
      "beta.json": JSON.stringify(b),
      "README.txt": "x",
    });
    const user = await loadUserTemplates(d);
    expect(user.map((t) => [t.name, t.source])).toEqual([
      ["acme", "templates/acme.json"],
      ["beta", "templates/beta.json"],
    ]);
    const reg = createTemplateRegistry(user);
    expect(
      reg
        .list()
        .slice(-2)
        .map((t) => t.name),
    ).toEqual(["acme", "beta"]);
    expect(reg.get("aws")?.source).toBe("builtin");
    const acme = reg.get("acme");
    if (acme === undefined) throw new Error("acme");
    const r = validateCredential(acme, { auth_method: "password", user: "ops", password: "pw" });
    expect(r).toMatchObject({
      ok: true,
      visible: { url: "https://api.acme.test", auth_method: "password", user: "ops" },
    });
  });

  test("a broken file is refused with its path: templates/acme.json: fields[2].when.auth_method", async () => {
    const t = good();
    t.fields[2].when = { auth_method: "x" };
    const d = await dataDir({ "acme.json": JSON.stringify(t, null, 2) });
    await expect(loadUserTemplates(d)).rejects.toThrow(
      "templates/acme.json: fields[2].when.auth_method: unknown option 'x' (known: token, password)",
    );
  });

  test("a file may not take a built-in's name", async () => {
    const d = await dataDir({ "openai.json": JSON.stringify({ ...good(), name: "openai" }) });
    await expect(loadUserTemplates(d)).rejects.toThrow(
      "templates/openai.json: name: 'openai' is a built-in template; copy it under another name (e.g. openai-custom)",
    );
  });

  test("a file name that is not a template name is refused", async () => {
    const d = await dataDir({ "Acme Corp.json": JSON.stringify(good()) });
    await expect(loadUserTemplates(d)).rejects.toThrow(
      /^templates\/Acme Corp\.json: the file name must be NAME\.json/,
    );
  });

  test("a file over 256 KiB is refused before parsing", async () => {
    const d = await dataDir({ "acme.json": `${JSON.stringify(good())}${" ".repeat(256 * 1024)}` });
    await expect(loadUserTemplates(d)).rejects.toThrow(
      /^templates\/acme\.json: is \d+ bytes; the limit is 262144$/,
    );
  });
});
