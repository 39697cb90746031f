/**
 * An oauth credential in a VM's view: only its access token and (optionally) its expiry are
 * delivered, never its refresh token or client secret; without a token it gives nothing; it
 * is not rotated or rolled back by hand; its expiry var takes part in env conflicts. Real
 * store (memory driver), barrier and use cases.
 */
import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "../../store/drivers/memory.js";
import { openStore } from "../../store/store.js";
import { createAccessUseCases } from "../access.js";
import { dropDamaged } from "../damage.js";
import { createEnvUseCases } from "../env.js";
import { createSecretUseCases } from "../secrets.js";
import { testDeps } from "../test-deps.js";
import { OAUTH_DEFAULTS } from "./deps.js";
import { openHostOnly, sealClientSecret, sealRefreshToken } from "./host-only.js";
import { storeTokens } from "./persist.js";

const local = { caller: { kind: "local" } as const, requestId: "t" };
const REFRESH = "rt-abcdefghijklmnop";
const CLIENT_SECRET = "cs-abcdefghijklmnop";

async function setup() {
  const base = await testDeps(await openStore(createMemoryDriver()));
  const deps = { ...base, oauth: OAUTH_DEFAULTS };
  const access = createAccessUseCases(deps);
  const secrets = createSecretUseCases(deps);
  const env = createEnvUseCases(deps);
  await access.createVm(local, "vm1", []);
  await deps.store.mutate((_h, tx) =>
    tx.put("secrets", {
      name: "gh",
      env: "GITHUB_TOKEN",
      scope: "global",
      kind: "oauth",
      provider: "github",
      description: "",
      labels: {},
      oauth: {
        preset: "github",
        endpoints: { token: "https://github.com/login/oauth/access_token" },
        clientId: "Iv1.x",
        clientSecret: sealClientSecret(deps, "gh", CLIENT_SECRET),
        scopes: [],
        refreshToken: sealRefreshToken(deps, "gh", 1, REFRESH),
        grant: 1,
        expiresEnv: "GITHUB_TOKEN_EXPIRES_AT",
        state: "ok",
      },
      currentVersion: 0,
      versions: [],
      createdAt: "t",
      updatedAt: "t",
    }),
  );
  const view = async () => {
    const snap = await env.getEnv(local, "vm1");
    return snap.vars.map((v) => [v.name, Buffer.from(v.value).toString()]);
  };
  return { deps, secrets, view };
}

describe("an oauth credential in a view", () => {
  test("without an access token it gives nothing; with one, the token and its expiry", async () => {
    const { deps, view } = await setup();
    expect(await view()).toEqual([]);
    const rec = await storeTokens(
      deps,
      local,
      "gh",
      { kind: "refresh", grant: 1 },
      {
        accessToken: "at-1-abcdefghijkl",
        expiresIn: 3600,
      },
    );
    const expiresAt = rec.versions[0]?.expiresAt as string;
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(3_590_000);
    expect(await view()).toEqual([
      ["GITHUB_TOKEN", "at-1-abcdefghijkl"],
      ["GITHUB_TOKEN_EXPIRES_AT", expiresAt],
    ]);
    // The provider kept its refresh token: the stored one stays, under the same grant.
    expect(rec.oauth?.grant).toBe(1);
    expect(openHostOnly(deps, rec)).toEqual({ refreshToken: REFRESH, clientSecret: CLIENT_SECRET });
  });

  test("a rotated refresh token replaces the old one in the same commit as the access token", async () => {
    const { deps } = await setup();
    const rec = await storeTokens(
      deps,
      local,
      "gh",
      { kind: "refresh", grant: 1 },
      {
        accessToken: "at-2-abcdefghijkl",
        refreshToken: "rt-new-abcdefghijkl",
      },
    );
    expect(rec.oauth?.grant).toBe(2);
    expect(rec.currentVersion).toBe(1);
    expect(openHostOnly(deps, rec).refreshToken).toBe("rt-new-abcdefghijkl");
    // A refresh that started under grant 1 cannot store over grant 2.
    await expect(
      storeTokens(
        deps,
        local,
        "gh",
        { kind: "refresh", grant: 1 },
        { accessToken: "x-abcdefghijk" },
      ),
    ).rejects.toMatchObject({ code: "aborted" });
    expect(deps.store.data.secrets.gh?.currentVersion).toBe(1);
  });

  test("not rotated or rolled back by hand; value reads say it needs login", async () => {
    const { secrets } = await setup();
    await expect(secrets.rotate(local, "gh", "v-abcdefghijkl")).rejects.toMatchObject({
      code: "failed_precondition",
    });
    await expect(secrets.rollback(local, "gh", 1)).rejects.toMatchObject({
      code: "failed_precondition",
    });
    await expect(secrets.getValue(local, "gh", 0)).rejects.toThrow(/oauth login gh/);
    const host = await secrets.getValue(local, "gh", 0, true);
    expect(host.host).toEqual({ refreshToken: REFRESH, clientSecret: CLIENT_SECRET });
    await expect(secrets.getValue(local, "gh", 0, false)).rejects.toThrow(/holds no access token/);
  });

  test("--repair drops a damaged access token but keeps the credential and its refresh token", async () => {
    const { deps } = await setup();
    const rec = await storeTokens(
      deps,
      local,
      "gh",
      { kind: "refresh", grant: 1 },
      {
        accessToken: "at-3-abcdefghijkl",
      },
    );
    const dropped = await dropDamaged(deps.store, [{ secret: "gh", version: rec.currentVersion }]);
    expect(dropped).toEqual([{ secret: "gh", versions: [1], current: 0 }]);
    const after = deps.store.data.secrets.gh;
    expect(after?.currentVersion).toBe(0);
    expect(after && openHostOnly(deps, after).refreshToken).toBe(REFRESH);
  });

  test("its expiry var conflicts like any env var at the same scope", async () => {
    const { secrets } = await setup();
    await expect(
      secrets.create(local, {
        name: "other",
        value: "v-abcdefghijkl",
        env: "GITHUB_TOKEN_EXPIRES_AT",
      }),
    ).rejects.toMatchObject({ code: "already_exists", field: "env" });
  });
});
