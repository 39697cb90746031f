/** PKCE (RFC 7636) and `state` values for the authorization code flow. */
import { createHash, randomBytes } from "node:crypto";

/** A PKCE pair. The verifier is a credential: keep it in memory, never log it. */
export interface Pkce {
  /** 32 random bytes, base64url: 43 characters (RFC 7636 §4.1, and §7.1 on entropy). */
  verifier: string;
  /** base64url(SHA-256(verifier)), sent in the authorization request. */
  challenge: string;
  method: "S256";
}

/** A fresh PKCE verifier and its S256 challenge; `plain` is never used (RFC 7636 §4.2). */
export function createPkce(): Pkce {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge, method: "S256" };
}

/** An unguessable `state` value (RFC 6749 §10.12): 16 random bytes, base64url. */
export function randomState(): string {
  return randomBytes(16).toString("base64url");
}
