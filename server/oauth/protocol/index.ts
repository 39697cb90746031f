/**
 * An OAuth 2.0 / OpenID Connect client for the secretsd broker, on Node builtins only
 * (fetch, node:http, node:crypto): no grpc, store or secrets imports, so it can be tested
 * against a real provider on its own.
 *
 * - presets.ts: `resolvePreset(name, opts)` (github, google, microsoft, gitlab, oidc) and
 *   `resolveEndpoints(resolved)`: endpoints, default scopes and env var, quirks.
 * - discovery.ts: `discover(issuer)`: OIDC Discovery, then RFC 8414, validated.
 * - token.ts: `refreshGrant`, `exchangeCode`, `introspect`, `revoke`.
 * - device.ts: `startDeviceAuthorization`, `pollDeviceToken` (RFC 8628).
 * - pkce.ts, code-flow.ts, loopback.ts: `createPkce`, `randomState`, `buildAuthorizationUrl`,
 *   `startLoopbackRedirect` (RFC 8252), `checkCallback` (state, RFC 9207 `iss`).
 * - errors.ts: `OAuthError` with a `kind` saying how to react; messages carry no secrets.
 * - http.ts (not exported): timeouts, no redirects, 64 KiB cap, error classification.
 */
export {
  type AuthorizationRequest,
  buildAuthorizationUrl,
  type CallbackExpectations,
  type CallbackParams,
  checkCallback,
} from "./code-flow.js";
export {
  DEVICE_CODE_GRANT,
  type DeviceAuthorization,
  type DevicePollEvent,
  type PollDeviceOptions,
  pollDeviceToken,
  startDeviceAuthorization,
} from "./device.js";
export { type DiscoveryOptions, discover, isLoopbackHttp, wellKnownUrls } from "./discovery.js";
export { isOAuthError, OAuthError, type OAuthErrorKind, type OAuthErrorOptions } from "./errors.js";
export { type LoopbackOptions, type LoopbackRedirect, startLoopbackRedirect } from "./loopback.js";
export { createPkce, type Pkce, randomState } from "./pkce.js";
export {
  PRESET_NAMES,
  type PresetName,
  type PresetOptions,
  presetQuirks,
  type ResolvedPreset,
  resolveEndpoints,
  resolvePreset,
} from "./presets.js";
export {
  type CodeExchange,
  exchangeCode,
  type Introspection,
  introspect,
  refreshGrant,
  revoke,
  type TokenRequestOptions,
} from "./token.js";
export type {
  ClientAuthMethod,
  ClientCredentials,
  HttpOptions,
  ProviderEndpoints,
  ProviderQuirks,
  TokenSet,
} from "./types.js";
