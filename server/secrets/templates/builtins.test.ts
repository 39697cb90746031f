/**
 * The built-in catalogue (issue #13): every built-in passes the user-template validator,
 * accepts a realistic credential (made-up values of the provider's real shape) and maps it to
 * the env names its SDKs read; every format refuses a near miss.
 */
import { describe, expect, test } from "vitest";
import { fieldsToAsk, validateCredential } from "./credential.js";
import { BUILTIN_TEMPLATES, createTemplateRegistry } from "./registry.js";
import type { Template } from "./schema.js";
import { validateTemplate } from "./validate-template.js";

const A40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const UUID = "5e7f1f8e-2b0a-4c4e-9d1a-3f6b8c2d9e01";
const GCP_JSON = JSON.stringify({
  type: "service_account",
  project_id: "acme-prod-1",
  private_key_id: "abc123",
  private_key: "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n",
  client_email: "deployer@acme-prod-1.iam.gserviceaccount.com",
  client_id: "1234567890",
});
const KUBECONFIG = [
  "apiVersion: v1",
  "kind: Config",
  "clusters:",
  "- cluster:",
  "    certificate-authority-data: LS0tLS1CRUdJTg==",
  "    server: https://10.0.0.1:6443",
  "  name: prod",
  "contexts:",
  "- context:",
  "    cluster: prod",
  "    user: admin",
  "  name: prod",
  "current-context: prod",
  "users:",
  "- name: admin",
  "  user:",
  "    token: eyJhbGciOiJSUzI1NiJ9.example",
  "",
].join("\n");

/** Per built-in: a realistic input and the env vars it must map to (name → field key). */
const EXAMPLES: Record<string, { input: Record<string, string>; env: Record<string, string> }> = {
  openai: {
    input: { api_key: `sk-proj-${"Ab3_".repeat(12)}` },
    env: { OPENAI_API_KEY: "api_key", OPENAI_BASE_URL: "base_url" },
  },
  anthropic: {
    input: { api_key: `sk-ant-api03-${"x9Y-".repeat(20)}` },
    env: { ANTHROPIC_API_KEY: "api_key", ANTHROPIC_BASE_URL: "base_url" },
  },
  gemini: {
    input: { api_key: "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY" },
    env: { GEMINI_API_KEY: "api_key" },
  },
  openrouter: {
    input: { api_key: `sk-or-v1-${"0123456789abcdef".repeat(4)}` },
    env: { OPENROUTER_API_KEY: "api_key" },
  },
  mistral: {
    input: { api_key: "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF" },
    env: { MISTRAL_API_KEY: "api_key" },
  },
  github: {
    input: { token: "ghp_16C7e42F292c6912E7710c838347Ae178B4a" },
    env: { GITHUB_TOKEN: "token", GITHUB_API_URL: "api_url" },
  },
  gitlab: {
    input: { token: "glpat-xxxxxxxxxxxxxxxxxxxx", url: "https://gitlab.example.com" },
    env: { GITLAB_TOKEN: "token", GITLAB_HOST: "url" },
  },
  "http-api": {
    input: { base_url: "https://api.example.com/v1", token: "tok_live_123456" },
    env: { API_BASE_URL: "base_url", API_TOKEN: "token" },
  },
  aws: {
    input: { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: A40, region: "eu-west-3" },
    env: {
      AWS_ACCESS_KEY_ID: "access_key_id",
      AWS_SECRET_ACCESS_KEY: "secret_access_key",
      AWS_DEFAULT_REGION: "region",
    },
  },
  azure: {
    input: {
      tenant_id: UUID,
      client_id: "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
      client_secret: "Qx8Q~abcDEF123ghiJKL456mnoPQR789stuVW",
      subscription_id: "11111111-2222-3333-4444-555555555555",
    },
    env: {
      AZURE_TENANT_ID: "tenant_id",
      AZURE_CLIENT_ID: "client_id",
      AZURE_CLIENT_SECRET: "client_secret",
      AZURE_SUBSCRIPTION_ID: "subscription_id",
    },
  },
  gcp: {
    input: { service_account_json: GCP_JSON, project_id: "acme-prod-1" },
    env: {
      GOOGLE_APPLICATION_CREDENTIALS_JSON: "service_account_json",
      GOOGLE_CLOUD_PROJECT: "project_id",
    },
  },
  proxmox: {
    input: {
      url: "https://pve.example.com:8006",
      token_id: "terraform@pve!ci",
      token_secret: UUID,
    },
    env: {
      PROXMOX_URL: "url",
      PROXMOX_TOKEN_ID: "token_id",
      PROXMOX_TOKEN_SECRET: "token_secret",
      PROXMOX_INSECURE: "insecure",
    },
  },
  vsphere: {
    input: {
      server: "vcenter.example.com",
      user: "administrator@vsphere.local",
      password: "Vm-w4re!pw",
    },
    env: {
      VSPHERE_SERVER: "server",
      VSPHERE_USER: "user",
      VSPHERE_PASSWORD: "password",
      VSPHERE_ALLOW_UNVERIFIED_SSL: "insecure",
    },
  },
  kubernetes: { input: { kubeconfig: KUBECONFIG }, env: { KUBECONFIG_DATA: "kubeconfig" } },
  "docker-registry": {
    input: { server: "registry.example.com:5000", username: "ci", password: "dckr_pat_abcdef" },
    env: { DOCKER_REGISTRY: "server", DOCKER_USERNAME: "username", DOCKER_PASSWORD: "password" },
  },
  postgres: {
    input: { host: "db.internal", database: "app", user: "app", password: "pg-Secret-1" },
    env: {
      PGHOST: "host",
      PGPORT: "port",
      PGDATABASE: "database",
      PGUSER: "user",
      PGPASSWORD: "password",
      PGSSLMODE: "sslmode",
    },
  },
  smtp: {
    input: { host: "smtp.example.com", port: "2525", user: "mailer", password: "smtp-Secret-1" },
    env: {
      SMTP_HOST: "host",
      SMTP_SECURITY: "security",
      SMTP_PORT: "port",
      SMTP_USER: "user",
      SMTP_PASSWORD: "password",
    },
  },
};

const byName = (name: string): Template => {
  const t = createTemplateRegistry().get(name);
  if (t === undefined) throw new Error(`no built-in ${name}`);
  return t;
};

describe("built-in templates", () => {
  test("the catalogue holds the templates issue #13 lists, each with an example here", () => {
    expect(BUILTIN_TEMPLATES.map((t) => t.name).sort()).toEqual(Object.keys(EXAMPLES).sort());
  });

  test.each(BUILTIN_TEMPLATES.map((t) => [t.name, t] as const))(
    "%s passes the user-template validator unchanged",
    (_name, t) => {
      const { source: _source, ...written } = t;
      expect(validateTemplate(JSON.parse(JSON.stringify(written)), "builtin")).toEqual(t);
    },
  );

  test.each(Object.entries(EXAMPLES))(
    "%s accepts a realistic credential and maps env names",
    (name, ex) => {
      const t = byName(name);
      const r = validateCredential(t, ex.input);
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      expect(Object.fromEntries(r.env)).toEqual(ex.env);
      // Secret fields are sealed, never visible; every value given comes back where it belongs.
      for (const f of t.fields) {
        if (f.secret) expect(r.visible).not.toHaveProperty(f.key);
        else expect(r.secret).not.toHaveProperty(f.key);
      }
      for (const [k, v] of Object.entries(ex.input))
        expect({ ...r.secret, ...r.visible }[k]).toBe(v);
      // A prompt given these answers asks at most optional fields left empty, then nothing.
      const answers: Record<string, string> = { ...r.visible, ...r.secret };
      const left = fieldsToAsk(t, answers);
      expect(left.filter((f) => f.required)).toEqual([]);
      for (const f of left) answers[f.key] = "";
      expect(fieldsToAsk(t, answers)).toEqual([]);
    },
  );

  test("every built-in has at least one secret field, and no secret field is left unmapped", () => {
    for (const t of BUILTIN_TEMPLATES) {
      const secrets = t.fields.filter((f) => f.secret);
      expect(secrets.length, t.name).toBeGreaterThan(0);
      for (const f of secrets) expect(f.env, `${t.name}.${f.key}`).toBeDefined();
    }
  });

  test("defaults are what the providers use", () => {
    const aws = validateCredential(byName("aws"), {
      access_key_id: "ASIAIOSFODNN7EXAMPLE",
      secret_access_key: A40,
      session_token: "FwoGZXIvYXdzEJr//////////wEaDO",
    });
    expect(aws).toMatchObject({ ok: true, visible: { region: "us-east-1" } });
    expect(aws.ok && aws.env).toContainEqual(["AWS_SESSION_TOKEN", "session_token"]);
    const pg = validateCredential(byName("postgres"), EXAMPLES.postgres?.input ?? {});
    expect(pg).toMatchObject({
      ok: true,
      visible: { mode: "fields", port: "5432", sslmode: "prefer" },
    });
    const smtp = validateCredential(byName("smtp"), {
      host: "smtp.example.com",
      user: "mailer",
      password: "pw",
    });
    expect(smtp).toMatchObject({ ok: true, visible: { security: "starttls" } });
    expect(smtp.ok && smtp.visible).not.toHaveProperty("port");
    const gl = validateCredential(byName("gitlab"), { token: "glpat-xxxxxxxxxxxxxxxxxxxx" });
    expect(gl).toMatchObject({ ok: true, visible: { url: "https://gitlab.com" } });
  });

  test("tests: which built-ins carry which kind of connection test", () => {
    const kinds = Object.fromEntries(
      BUILTIN_TEMPLATES.map((t) => [t.name, t.tests.map((x) => x.kind).join(",")]),
    );
    expect(kinds).toEqual({
      openai: "http",
      anthropic: "http",
      gemini: "http",
      openrouter: "http",
      mistral: "http",
      github: "http",
      gitlab: "http",
      "http-api": "http,http,http",
      aws: "aws_sts",
      azure: "http",
      gcp: "",
      proxmox: "http,http",
      vsphere: "http",
      kubernetes: "",
      "docker-registry": "",
      postgres: "postgres,postgres",
      smtp: "smtp",
    });
  });
});

/** Near misses: each value is wrong in one way a person might get it wrong. */
const NEAR_MISSES: Array<[template: string, field: string, value: string, reason: RegExp]> = [
  ["openai", "api_key", `sk_${"a".repeat(40)}`, /starts with sk-/],
  ["openai", "api_key", "sk-short", /starts with sk-/],
  ["openai", "organization", "acme", /org-/],
  ["anthropic", "api_key", `sk-${"a".repeat(40)}`, /sk-ant-/],
  ["gemini", "api_key", `AIza${"a".repeat(34)}`, /AIza and 35/],
  ["openrouter", "api_key", `sk-${"a".repeat(40)}`, /sk-or-/],
  ["mistral", "api_key", "a".repeat(31), /32 letters/],
  ["github", "token", `ghx_${"a".repeat(36)}`, /ghp_/],
  ["github", "token", `ghp_${"a".repeat(35)}`, /ghp_/],
  ["github", "token", "github_pat_short", /github_pat_/],
  ["gitlab", "token", `gl-${"a".repeat(20)}`, /glpat-/],
  ["gitlab", "url", "gitlab.example.com", /absolute URL/],
  ["http-api", "header", "X Api Key", /header name/],
  ["http-api", "test_path", "v1/me", /starting with \//],
  ["aws", "access_key_id", "AKIBIOSFODNN7EXAMPLE", /AKIA/],
  ["aws", "access_key_id", "AKIAIOSFODNN7EXAMPL", /AKIA/],
  ["aws", "secret_access_key", "short", /40 characters/],
  ["aws", "region", "Europe", /region code/],
  ["azure", "tenant_id", "contoso", /GUID/],
  ["azure", "client_id", `${UUID}0`, /GUID/],
  ["gcp", "service_account_json", "{not json", /valid JSON/],
  ["gcp", "service_account_json", JSON.stringify({ type: "authorized_user" }), /service_account/],
  [
    "gcp",
    "service_account_json",
    JSON.stringify({ type: "service_account", client_email: "a@b" }),
    /private_key/,
  ],
  ["gcp", "project_id", "Acme", /6 to 30/],
  ["proxmox", "url", "ftp://pve:8006", /http/],
  ["proxmox", "token_id", "terraform!ci", /USER@REALM!TOKENNAME/],
  ["proxmox", "token_secret", "not-a-uuid", /UUID/],
  ["proxmox", "insecure", "yes", /one of: false, true/],
  ["vsphere", "server", "https://vcenter", /host name/],
  ["kubernetes", "kubeconfig", "apiVersion: v1\nkind: Config\n", /no top-level clusters/],
  ["kubernetes", "kubeconfig", '{"clusters": []}', /clusters is missing or empty/],
  ["kubernetes", "kubeconfig", "clusters:\n\t- x\nusers:\ncontexts:\n", /tabs/],
  ["docker-registry", "server", "registry example", /registry host/],
  ["postgres", "port", "65536", /1 to 65535/],
  ["postgres", "port", "05432", /1 to 65535/],
  ["postgres", "sslmode", "always", /one of: disable/],
  ["postgres", "url", "mysql://app:pw@db/app", /postgres:\/\//],
  ["azure", "subscription_id", "my-subscription", /GUID/],
  ["proxmox", "user", "root@pam", /without @realm/],
  ["proxmox", "realm", "pam realm", /pam, pve/],
  ["postgres", "host", "db host", /host name/],
  ["smtp", "security", "ssl", /one of: starttls, tls, none/],
  ["smtp", "host", "smtp_example.com", /host name/],
];

/** Fields that apply only in another mode than the example's: a base input in that mode. */
const BASES: Record<string, Record<string, string>> = {
  "postgres.url": { mode: "url" },
  "proxmox.user": {
    url: "https://pve:8006",
    auth_method: "password",
    user: "root",
    password: "pw",
  },
  "proxmox.realm": {
    url: "https://pve:8006",
    auth_method: "password",
    user: "root",
    password: "pw",
  },
};

describe("formats refuse near misses, naming the field and the expected shape", () => {
  test.each(NEAR_MISSES)("%s.%s", (name, field, value, reason) => {
    const t = byName(name);
    const base = BASES[`${name}.${field}`] ?? EXAMPLES[name]?.input;
    if (base === undefined) throw new Error(name);
    const input = { ...base, [field]: value };
    const r = validateCredential(t, input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]?.path).toBe(field);
    expect(r.errors[0]?.reason).toMatch(reason);
    expect(JSON.stringify(r.errors)).not.toContain(JSON.stringify(value).slice(1, -1));
  });

  test("every field with a format has a near miss above", () => {
    const covered = new Set(NEAR_MISSES.map(([t, f]) => `${t}.${f}`));
    const formatted = BUILTIN_TEMPLATES.flatMap((t) =>
      t.fields
        .filter((f) => f.format !== undefined || f.check !== undefined)
        .map((f) => `${t.name}.${f.key}`),
    );
    expect(formatted.filter((k) => !covered.has(k))).toEqual([]);
  });
});
