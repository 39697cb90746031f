/** What the OAuth broker's use cases depend on, beyond every use case's `Deps`. */
import type { OAuthConfig } from "../../config.js";
import type { Deps } from "../context.js";

export type { OAuthConfig } from "../../config.js";
export { OAUTH_DEFAULTS } from "../../config.js";

export interface OAuthDeps extends Deps {
  readonly oauth: OAuthConfig;
}
