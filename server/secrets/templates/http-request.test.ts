/**
 * Connection-test requests (issue #13, "Connection tests"): the test that applies to a
 * credential, and the exact HTTP request each built-in's test sends, so the runner only sends
 * it. Values are made up; the request is the one place a value may appear.
 */
import { describe, expect, test } from "vitest";
import { type CheckedCredential, validateCredential } from "./credential.js";
import { buildHttpRequest, connectionTestFor, credentialValues } from "./http-request.js";
import { createTemplateRegistry } from "./registry.js";
import type { HttpTest, Template } from "./schema.js";

const reg = createTemplateRegistry();
const UUID = "5e7f1f8e-2b0a-4c4e-9d1a-3f6b8c2d9e01";

/** The test that applies to `input` under template `name`, and the credential's values. */
function setup(name: string, input: Record<string, string>) {
  const t = reg.get(name) as Template;
  const c = validateCredential(t, input);
  if (!c.ok) throw new Error(JSON.stringify(c.errors));
  const values = credentialValues(c as CheckedCredential);
  return { test: connectionTestFor(t, values), values };
}

function request(name: string, input: Record<string, string>, opts: { baseUrl?: string } = {}) {
  const { test: t, values } = setup(name, input);
  if (t?.kind !== "http") throw new Error(`${name}: no http test`);
  return buildHttpRequest(t, values, opts);
}

describe("built-in HTTP tests", () => {
  test("openai: GET /v1/models with a bearer token; a credential's base URL moves it", () => {
    const key = `sk-proj-${"a".repeat(40)}`;
    expect(request("openai", { api_key: key })).toEqual({
      method: "GET",
      url: "https://api.openai.com/v1/models",
      headers: { Authorization: `Bearer ${key}` },
      insecureTls: false,
      okStatus: [200],
    });
    expect(
      request("openai", { api_key: key, base_url: "http://127.0.0.1:8080/v1/" }),
    ).toMatchObject({
      url: "http://127.0.0.1:8080/v1/models",
    });
    // The runner may override it too (a loopback server in a test).
    expect(request("openai", { api_key: key }, { baseUrl: "http://127.0.0.1:9/v1" })).toMatchObject(
      {
        url: "http://127.0.0.1:9/v1/models",
      },
    );
  });

  test("anthropic: x-api-key and anthropic-version", () => {
    const key = `sk-ant-api03-${"b".repeat(40)}`;
    expect(request("anthropic", { api_key: key })).toMatchObject({
      url: "https://api.anthropic.com/v1/models",
      headers: { "x-api-key": key, "anthropic-version": "2023-06-01" },
    });
  });

  test("github and gitlab: GET /user and /api/v4/user", () => {
    const gh = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    expect(request("github", { token: gh })).toMatchObject({
      url: "https://api.github.com/user",
      headers: { Authorization: `Bearer ${gh}`, "User-Agent": "vm-auth" },
    });
    const gl = "glpat-xxxxxxxxxxxxxxxxxxxx";
    expect(request("gitlab", { token: gl, url: "https://git.example.com/" })).toMatchObject({
      url: "https://git.example.com/api/v4/user",
      headers: { "PRIVATE-TOKEN": gl },
    });
  });

  test("proxmox: a PVEAPIToken header or a ticket form, per auth method, honouring insecure", () => {
    const url = "https://pve.example.com:8006";
    expect(
      request("proxmox", { url, token_id: "ci@pve!t1", token_secret: UUID, insecure: "true" }),
    ).toEqual({
      method: "GET",
      url: `${url}/api2/json/version`,
      headers: { Authorization: `PVEAPIToken=ci@pve!t1=${UUID}` },
      insecureTls: true,
      okStatus: [200],
    });
    expect(
      request("proxmox", { url, auth_method: "password", user: "root", password: "p&w=1" }),
    ).toEqual({
      method: "POST",
      url: `${url}/api2/json/access/ticket`,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "username=root%40pam&password=p%26w%3D1",
      insecureTls: false,
      okStatus: [200],
    });
  });

  test("azure: the client-credentials token request, tenant in the path", () => {
    const r = request("azure", { tenant_id: UUID, client_id: UUID, client_secret: "s3cr3t~x" });
    expect(r).toMatchObject({
      method: "POST",
      url: `https://login.microsoftonline.com/${UUID}/oauth2/v2.0/token`,
      okStatus: [200],
    });
    const body = new URLSearchParams((r as { body: string }).body);
    expect(Object.fromEntries(body)).toEqual({
      grant_type: "client_credentials",
      client_id: UUID,
      client_secret: "s3cr3t~x",
      scope: "https://management.azure.com/.default",
    });
  });

  test("vsphere: POST /api/session with basic auth, 201", () => {
    const r = request("vsphere", {
      server: "vc.example.com",
      user: "administrator@vsphere.local",
      password: "pw:1",
    });
    expect(r).toMatchObject({
      method: "POST",
      url: "https://vc.example.com/api/session",
      headers: {
        Authorization: `Basic ${Buffer.from("administrator@vsphere.local:pw:1").toString("base64")}`,
      },
      okStatus: [201],
    });
  });

  test("http-api: the header and prefix the credential chose, its test path", () => {
    const base = { base_url: "https://api.example.com/", token: "tok_1" };
    expect(request("http-api", base)).toMatchObject({
      url: "https://api.example.com/",
      headers: { Authorization: "Bearer tok_1" },
    });
    expect(
      request("http-api", { ...base, header: "X-Api-Key", scheme: "raw", test_path: "/v1/me" }),
    ).toMatchObject({
      url: "https://api.example.com/v1/me",
      headers: { "X-Api-Key": "tok_1" },
    });
    expect(request("http-api", { ...base, scheme: "token" })).toMatchObject({
      headers: { Authorization: "Token tok_1" },
    });
  });

  test("non-HTTP kinds name their fields; templates without a test have none", () => {
    expect(setup("postgres", { mode: "url", url: "postgres://a:b@h/d" }).test).toEqual({
      kind: "postgres",
      fields: { url: "url" },
      when: { mode: ["url"] },
    });
    expect(setup("smtp", { host: "smtp.example.com", user: "u", password: "p" }).test?.kind).toBe(
      "smtp",
    );
    const aws = { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "a".repeat(40) };
    expect(setup("aws", aws).test?.kind).toBe("aws_sts");
    expect(
      setup("kubernetes", {
        kubeconfig: "clusters:\n- cluster:\n    server: https://k\nusers:\ncontexts:\n",
      }).test,
    ).toBeUndefined();
  });
});

describe("buildHttpRequest errors", () => {
  const t: HttpTest = {
    kind: "http",
    method: "GET",
    baseUrl: "{url}",
    path: "/x/{id}",
    auth: { type: "header", name: "Authorization", value: "Bearer {token}" },
    headers: {},
    okStatus: [200],
  };

  test("a placeholder without a value names the field, not a value", () => {
    const values = new Map([
      ["url", "https://h"],
      ["id", "a/b c"],
    ]);
    expect(buildHttpRequest(t, values)).toEqual({
      error: { path: "token", reason: "is needed by the test's auth.value" },
    });
  });

  test("path values are percent-encoded but keep slashes", () => {
    const values = new Map([
      ["url", "https://h"],
      ["id", "a/b c?d"],
      ["token", "t"],
    ]);
    expect(buildHttpRequest(t, values)).toMatchObject({ url: "https://h/x/a/b%20c%3Fd" });
  });

  test("a header value with a line break is refused (no header injection)", () => {
    const values = new Map([
      ["url", "https://h"],
      ["id", "1"],
      ["token", "t\r\nX-Evil: 1"],
    ]);
    expect(buildHttpRequest(t, values)).toEqual({
      error: { path: "auth.value", reason: "must not contain line breaks or NUL" },
    });
  });

  test("a base URL that is not http(s) is refused", () => {
    const values = new Map([
      ["url", "file:///etc"],
      ["id", "1"],
      ["token", "t"],
    ]);
    expect(buildHttpRequest(t, values)).toEqual({
      error: { path: "baseUrl", reason: "must be an http:// or https:// URL" },
    });
  });
});
