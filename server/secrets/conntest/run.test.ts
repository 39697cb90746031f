// Specs and credentials that cannot be tested are refused before any connection, naming the
// field (no server is needed: every case here throws before a socket is opened).
import { describe, expect, it } from "vitest";
import type { SecretsError } from "../../errors.js";
import { type ConnectionTestSpec, runConnectionTest } from "./run.js";

const signal = new AbortController().signal;
const http: ConnectionTestSpec = {
  kind: "http",
  method: "GET",
  path: "/v1/models",
  baseUrl: "https://api.example.com",
  auth: { type: "header", name: "Authorization", template: "Bearer {token}" },
  okStatuses: [200],
};

async function refusal(
  spec: ConnectionTestSpec,
  credential: Record<string, string>,
  extra: { timeoutMs?: number; baseUrlOverride?: string } = {},
): Promise<string> {
  const err = (await runConnectionTest(spec, credential, {
    timeoutMs: 1000,
    signal,
    ...extra,
  }).then(
    () => undefined,
    (e: unknown) => e,
  )) as SecretsError | undefined;
  expect(err?.code).toBe("invalid_argument");
  return err?.message ?? "";
}

describe("refused before connecting", () => {
  it("timeoutMs outside 1-120000", async () => {
    expect(await refusal(http, { token: "t0ken" }, { timeoutMs: 0 })).toMatch(
      /^timeoutMs: 0 is not/,
    );
  });

  it("HTTP: base URL not absolute, with userinfo, plain http to a remote host; no base URL", async () => {
    expect(await refusal(http, { token: "t0ken" }, { baseUrlOverride: "api.example.com" })).toBe(
      "baseUrlOverride: 'api.example.com' is not an absolute URL",
    );
    expect(
      await refusal(http, { token: "t0ken" }, { baseUrlOverride: "https://u:p@h.example" }),
    ).toMatch(/^baseUrlOverride: must not hold a user or password/);
    expect(await refusal({ ...http, baseUrl: "http://10.0.0.1" }, { token: "t0ken" })).toBe(
      "test.baseUrl: http://10.0.0.1 is plain http; only https, or http to loopback",
    );
    const { baseUrl: _, ...noBase } = http;
    expect(await refusal(noBase, { token: "t0ken" })).toMatch(
      /^baseUrlOverride: the template has no base URL/,
    );
  });

  it("HTTP: a missing field, a bad method, no ok statuses, a control character", async () => {
    expect(await refusal(http, {})).toBe("credential.token: is required by test.auth.value");
    expect(await refusal({ ...http, method: "G T" }, { token: "t0ken" })).toMatch(/^test.method:/);
    expect(await refusal({ ...http, okStatuses: [] }, { token: "t0ken" })).toBe(
      "test.okStatus: is empty",
    );
    const msg = await refusal(http, { token: "t0k\nen" });
    expect(msg).toMatch(/control character/);
    expect(msg).not.toContain("t0k");
  });

  it("postgres: missing fields, bad port, bad sslmode, a URL never quoted", async () => {
    const pg: ConnectionTestSpec = { kind: "postgres" };
    expect(await refusal(pg, { user: "u", password: "pw123" })).toBe(
      "credential.host: is required",
    );
    expect(await refusal(pg, { host: "h", user: "u", password: "pw123", port: "99999" })).toBe(
      "credential.port: port '99999' is not 1-65535",
    );
    expect(
      await refusal(pg, { host: "h", user: "u", password: "pw123", sslmode: "maybe" }),
    ).toMatch(/^credential.sslmode: sslmode 'maybe' is not one of disable, allow/);
    const msg = await refusal(pg, { url: "not a url with pw123" });
    expect(msg).toBe("credential.url: is not a postgres:// URL");
    expect(
      await refusal(
        pg,
        { host: "h", user: "u", password: "pw123" },
        { baseUrlOverride: "https://x" },
      ),
    ).toBe("baseUrlOverride: a postgres test has no base URL");
  });

  it("smtp: bad security, bad port, plaintext password to a remote host", async () => {
    const smtp: ConnectionTestSpec = { kind: "smtp" };
    expect(await refusal(smtp, { host: "h", security: "ssl" })).toBe(
      "credential.security: 'ssl' is not starttls, tls or none",
    );
    expect(await refusal(smtp, { host: "h", port: "x" })).toBe(
      "credential.port: 'x' is not 1-65535",
    );
    expect(await refusal(smtp, { host: "10.0.0.1", security: "none", password: "pw123" })).toMatch(
      /^credential.security: none would send the password in plaintext to 10.0.0.1/,
    );
  });

  it("fields maps roles to the credential's names, and errors name the credential's field", async () => {
    const pg: ConnectionTestSpec = {
      kind: "postgres",
      fields: { host: "pg_host", user: "pg_user" },
    };
    expect(await refusal(pg, { host: "h", pg_user: "u" })).toBe("credential.pg_host: is required");
    const smtp: ConnectionTestSpec = {
      kind: "smtp",
      fields: { host: "server", port: "smtp_port" },
    };
    expect(await refusal(smtp, { server: "h", smtp_port: "0" })).toBe(
      "credential.smtp_port: '0' is not 1-65535",
    );
  });

  it("a stray brace in a template is refused naming where", async () => {
    expect(
      await refusal(
        { ...http, auth: { type: "header", name: "x-key", value: "{token" } },
        { token: "t" },
      ),
    ).toMatch(/^test.auth.value: has a '\{' that does not start a \{field\}/);
  });

  it("an unknown kind", async () => {
    expect(await refusal({ kind: "ftp" } as unknown as ConnectionTestSpec, {})).toBe(
      "test.kind: 'ftp' is not http, postgres or smtp",
    );
  });
});
