/**
 * The persisted document. Values exist here only as ciphertext (barrier blobs, base64);
 * tokens only as keyed hashes. Drivers treat the whole document as opaque JSON.
 */
export const SCHEMA_VERSION = 1;

export interface StoreData {
  schemaVersion: number;
  /** Bumped once by every committed change, like etcd's revision. */
  revision: number;
  keyring: KeyringRecord | null;
  secrets: Record<string, SecretRecord>;
  groups: Record<string, GroupRecord>;
  vms: Record<string, VmRecord>;
  adminTokens: Record<string, AdminTokenRecord>;
}

export interface KeyringRecord {
  /** Short id of the master key that wraps the terms below. */
  masterKeyId: string;
  activeTerm: number;
  /** Data keys by term, each wrapped by the master key (base64 barrier blob). */
  terms: { term: number; wrapped: string; createdAt: string }[];
  /** Key for hashing tokens, wrapped by the master key. */
  tokenKey: string;
}

export type SecretKindRecord = "static" | "generated" | "oauth";

export interface SecretVersionRecord {
  version: number;
  /** Barrier blob; associated data binds it to the secret name and version. */
  ciphertext: string;
  createdAt: string;
  createdBy: string;
}

export interface SecretRecord {
  name: string;
  env: string;
  scope: string;
  kind: SecretKindRecord;
  provider: string;
  description: string;
  labels: Record<string, string>;
  /** Set on purpose to deliver an env var on the deny-list (env-policy.ts). */
  allowSensitiveEnv?: boolean;
  currentVersion: number;
  versions: SecretVersionRecord[];
  createdAt: string;
  updatedAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

export interface GroupRecord {
  name: string;
  createdAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

export interface TokenRecord {
  /** Public id: a prefix of the hash, for listing and revoking. */
  id: string;
  hash: string;
  createdAt: string;
}

export interface VmRecord {
  name: string;
  groups: string[];
  tokens: TokenRecord[];
  createdAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

export interface AdminTokenRecord extends TokenRecord {
  name: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/** What a mutation changed: for watchers (which views it may touch) and drivers. */
export type Change =
  | { kind: "secret"; name: string; scopes: string[] }
  | { kind: "vm"; vm: string }
  | { kind: "group"; group: string; vms: string[] }
  | { kind: "token"; vm?: string; admin?: string }
  | { kind: "keyring" };

/** A driver loads and durably saves the whole document. */
export interface StoreDriver {
  /** The last durably saved document, or undefined when none exists yet. */
  load(): Promise<StoreData | undefined>;
  /**
   * Resolves only once the document is durable. `changes` are those the mutations since the
   * last save reported (a driver may write only what they name, plus what it can compare).
   */
  save(data: StoreData, changes?: readonly Change[]): Promise<void>;
  close(): Promise<void>;
}

/** An empty document at revision 0. */
export function emptyStore(): StoreData {
  return {
    schemaVersion: SCHEMA_VERSION,
    revision: 0,
    keyring: null,
    secrets: {},
    groups: {},
    vms: {},
    adminTokens: {},
  };
}
