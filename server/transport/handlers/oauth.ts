import type { MessageInitShape } from "@bufbuild/protobuf";
import type { OAuthCredentialSchema, OAuthService } from "../../../proto/gen/vmauth/v1/oauth_pb.js";
import {
  OauthLoginMethod,
  OauthLoginState,
  OauthState,
} from "../../../proto/gen/vmauth/v1/oauth_pb.js";
import { invalidArgument } from "../../errors.js";
import type { LoginMethod, OAuthUseCases } from "../../secrets/oauth/oauth.js";
import type { SecretRecord } from "../../store/types.js";
import type { ServiceImpl } from "../adapter.js";
import { ts } from "../convert.js";

export function oauthHandlers(oauth: OAuthUseCases): ServiceImpl<typeof OAuthService> {
  return {
    async addOAuth(req, ctx) {
      const e = req.endpoints;
      const { record, revision } = await oauth.add(ctx, {
        name: req.name,
        preset: req.preset,
        issuer: req.issuer,
        tenant: req.tenant,
        clientId: req.clientId,
        clientSecret: req.clientSecret,
        scopes: req.scopes,
        env: req.env,
        expiresEnv: req.expiresEnv,
        scope: req.scope,
        description: req.description,
        labels: req.labels,
        refreshToken: req.refreshToken,
        endpoints: {
          ...(e?.token ? { token: e.token } : {}),
          ...(e?.authorization ? { authorization: e.authorization } : {}),
          ...(e?.deviceAuthorization ? { deviceAuthorization: e.deviceAuthorization } : {}),
          ...(e?.revocation ? { revocation: e.revocation } : {}),
        },
        allowSensitiveEnv: req.allowSensitiveEnv,
      });
      return { credential: toCredential(record), revision: BigInt(revision) };
    },
    async listOAuth() {
      return {
        credentials: oauth.list().map((c) => toCredential(c.record, c.nextRefreshAt)),
      };
    },
    async startOAuthLogin(req, ctx) {
      const p = await oauth.startLogin(ctx, req.name, methodOf(req.method));
      return {
        loginId: p.loginId,
        method: p.method === "device" ? OauthLoginMethod.DEVICE : OauthLoginMethod.CODE,
        verificationUri: p.verificationUri ?? "",
        verificationUriComplete: p.verificationUriComplete ?? "",
        userCode: p.userCode ?? "",
        authorizationUrl: p.authorizationUrl ?? "",
        expiresAt: ts(p.expiresAt),
      };
    },
    async waitOAuthLogin(req, ctx) {
      const s = await oauth.waitLogin(ctx, req.loginId, req.waitMs, ctx.signal);
      return {
        state: LOGIN_STATE[s.state],
        error: s.error ?? "",
        version: s.version ?? 0,
        revision: BigInt(s.revision ?? 0),
      };
    },
    async cancelOAuthLogin(req, ctx) {
      oauth.cancelLogin(ctx, req.loginId);
      return {};
    },
    async refreshOAuth(req, ctx) {
      const r = await oauth.refresh(ctx, req.name);
      return {
        version: r.version,
        ...(r.expiresAt ? { expiresAt: ts(r.expiresAt) } : {}),
        revision: BigInt(r.revision),
      };
    },
    async logoutOAuth(req, ctx) {
      const r = await oauth.logout(ctx, req.name, req.force);
      return { revoked: r.revoked, revision: BigInt(r.revision) };
    },
  };
}

// --- internal ---

const STATE = { ok: OauthState.OK, needs_login: OauthState.NEEDS_LOGIN, error: OauthState.ERROR };
const LOGIN_STATE = {
  pending: OauthLoginState.PENDING,
  done: OauthLoginState.DONE,
  failed: OauthLoginState.FAILED,
  cancelled: OauthLoginState.CANCELLED,
};

function methodOf(m: OauthLoginMethod): LoginMethod | undefined {
  switch (m) {
    case OauthLoginMethod.UNSPECIFIED:
      return undefined;
    case OauthLoginMethod.DEVICE:
      return "device";
    case OauthLoginMethod.CODE:
      return "code";
    default:
      throw invalidArgument("method", `${m} is not a login method`);
  }
}

/** An oauth credential as listed: configuration and state, never a token. */
function toCredential(
  r: SecretRecord,
  nextRefreshAt?: number,
): MessageInitShape<typeof OAuthCredentialSchema> {
  const o = r.oauth;
  if (!o) return { name: r.name };
  const v = r.versions.find((x) => x.version === r.currentVersion);
  const e = o.endpoints;
  return {
    name: r.name,
    preset: o.preset,
    issuer: o.issuer ?? "",
    tenant: o.tenant ?? "",
    clientId: o.clientId,
    scopes: o.scopes,
    env: r.env,
    expiresEnv: o.expiresEnv ?? "",
    scope: r.scope,
    state: STATE[o.state],
    ...(v?.expiresAt ? { expiresAt: ts(v.expiresAt) } : {}),
    ...(o.lastRefreshAt ? { lastRefreshAt: ts(o.lastRefreshAt) } : {}),
    lastError: o.lastError ?? "",
    ...(o.lastErrorAt ? { lastErrorAt: ts(o.lastErrorAt) } : {}),
    ...(nextRefreshAt === undefined ? {} : { nextRefreshAt: ts(new Date(nextRefreshAt)) }),
    hasRefreshToken: o.refreshToken !== undefined,
    confidential: o.clientSecret !== undefined,
    revocationSupported: e.revocation !== undefined,
    deviceLoginSupported: e.deviceAuthorization !== undefined,
    codeLoginSupported: e.authorization !== undefined,
    version: r.currentVersion,
    modRevision: BigInt(r.modRevision),
    endpoints: {
      token: e.token,
      authorization: e.authorization ?? "",
      deviceAuthorization: e.deviceAuthorization ?? "",
      revocation: e.revocation ?? "",
    },
  };
}
