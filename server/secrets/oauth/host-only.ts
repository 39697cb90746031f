/**
 * The host-only half of an oauth credential: its refresh token and client secret, sealed by
 * the barrier like values but under their own associated data, so that no blob of theirs can
 * be moved into a value slot (or back) and open. Nothing here ever reaches a view.
 */

import { failedPrecondition } from "../../errors.js";
import type { OAuthRecord, SecretRecord } from "../../store/types.js";
import type { Deps } from "../context.js";

/** What `get --host-only` shows of an oauth credential. */
export interface OAuthHostOnly {
  refreshToken?: string;
  clientSecret?: string;
}

/** Associated data of a refresh token: the credential and the grant it belongs to. */
export function refreshTokenAad(name: string, grant: number): string {
  return `vmauth/oauth/${name}/refresh-token/g${grant}`;
}

/** Associated data of a client secret. */
export function clientSecretAad(name: string): string {
  return `vmauth/oauth/${name}/client-secret`;
}

/** Seals a refresh token for grant `grant` of `name`. */
export function sealRefreshToken(
  deps: Pick<Deps, "barrier">,
  name: string,
  grant: number,
  token: string,
) {
  return deps.barrier.seal(refreshTokenAad(name, grant), token);
}

/** Seals a client secret of `name`. */
export function sealClientSecret(deps: Pick<Deps, "barrier">, name: string, secret: string) {
  return deps.barrier.seal(clientSecretAad(name), secret);
}

/**
 * The refresh token of `rec`, or undefined when it holds none. A blob that does not open is
 * damage: FAILED_PRECONDITION naming the credential (never an INTERNAL, never the blob).
 */
export function openRefreshToken(deps: Pick<Deps, "barrier">, name: string, o: OAuthRecord) {
  if (o.refreshToken === undefined) return undefined;
  try {
    return deps.barrier.open(refreshTokenAad(name, o.grant), o.refreshToken);
  } catch {
    throw damaged(name, "refresh token");
  }
}

/** The client secret of `rec`, or undefined for a public client. Damage as above. */
export function openClientSecret(deps: Pick<Deps, "barrier">, name: string, o: OAuthRecord) {
  if (o.clientSecret === undefined) return undefined;
  try {
    return deps.barrier.open(clientSecretAad(name), o.clientSecret);
  } catch {
    throw damaged(name, "client secret");
  }
}

/** Both host-only secrets of an oauth credential, for an audited host read. */
export function openHostOnly(deps: Pick<Deps, "barrier">, rec: SecretRecord): OAuthHostOnly {
  const o = rec.oauth;
  if (!o) return {};
  const refreshToken = openRefreshToken(deps, rec.name, o);
  const clientSecret = openClientSecret(deps, rec.name, o);
  return {
    ...(refreshToken === undefined ? {} : { refreshToken }),
    ...(clientSecret === undefined ? {} : { clientSecret }),
  };
}

// --- internal ---

function damaged(name: string, what: string) {
  return failedPrecondition(
    `oauth credential '${name}': its stored ${what} does not decrypt (the store is damaged); log in again with 'secretsctl oauth login ${name}'`,
    "name",
  );
}
