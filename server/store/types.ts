/**
 * The persisted document and what drivers persist of it. Values exist here only as
 * ciphertext (barrier blobs, base64); tokens only as keyed hashes. Drivers treat records as
 * opaque JSON keyed by section and name.
 */

/** The document's schema version; a store written by a newer one is refused (store.ts). */
export const SCHEMA_VERSION = 1;

/** The whole document, as a driver loads it. */
export interface StoreData {
  schemaVersion: number;
  /** Bumped once by every committed change, like etcd's revision. */
  revision: number;
  keyring: KeyringRecord | null;
  secrets: Record<string, SecretRecord>;
  groups: Record<string, GroupRecord>;
  vms: Record<string, VmRecord>;
  adminTokens: Record<string, AdminTokenRecord>;
  /** Manifests: what a VM or a group of VMs needs (issue #11). Absent in older documents. */
  manifests: Record<string, ManifestRecord>;
}

/** The data keys, wrapped by the master key (barrier/keyring). */
export interface KeyringRecord {
  /** Short id of the master key that wraps the terms below. */
  masterKeyId: string;
  activeTerm: number;
  /** Data keys by term, each wrapped by the master key (base64 barrier blob). */
  terms: { term: number; wrapped: string; createdAt: string }[];
  /** Key for hashing tokens, wrapped by the master key. */
  tokenKey: string;
}

/** How a secret's value comes to be. */
export type SecretKindRecord = "static" | "generated" | "oauth";

/** One stored version of a secret's value. */
export interface SecretVersionRecord {
  version: number;
  /** Barrier blob; associated data binds it to the secret name and version. */
  ciphertext: string;
  createdAt: string;
  createdBy: string;
  /** OAuth access tokens: when this one expires (ISO 8601), when the provider said. */
  expiresAt?: string;
  /** Manifest-made values: generated, provided by a person, or fetched. */
  source?: "generated" | "provided" | "fetched";
  /** The value did not match the secret's `format` when it was stored. */
  malformed?: boolean;
}

/** How an oauth credential stands with its provider. */
export type OAuthStateRecord = "ok" | "needs_login" | "error";

/** Where an oauth credential's provider answers (resolved by discovery or given). */
export interface OAuthEndpointsRecord {
  token: string;
  authorization?: string;
  deviceAuthorization?: string;
  revocation?: string;
  introspection?: string;
  /** RFC 9207: the provider sends `iss` on authorization responses. */
  issParameterSupported?: boolean;
}

/**
 * The host-only half of an oauth credential (a secret of kind "oauth", whose versions hold
 * its access tokens). The refresh token and the client secret are barrier blobs (sealed like
 * values, bound to the credential's name) and never enter a view, a listing or a log.
 */
export interface OAuthRecord {
  /** "github", "google", "microsoft", "gitlab" or "oidc". */
  preset: string;
  /** The issuer discovery ran against, when it did. */
  issuer?: string;
  /** Microsoft's tenant; GitLab's base URL is the issuer. */
  tenant?: string;
  endpoints: OAuthEndpointsRecord;
  clientId: string;
  /** Barrier blob of the client secret; absent for a public client. */
  clientSecret?: string;
  scopes: string[];
  /** Barrier blob of the refresh token; absent before login and after logout. */
  refreshToken?: string;
  /**
   * Bumped whenever the refresh token is replaced (login, rotation, logout): part of its
   * associated data, and how a refresh notices that a login or logout overtook it.
   */
  grant: number;
  /** Env var that carries the access token's expiry (ISO 8601), if wanted. */
  expiresEnv?: string;
  state: OAuthStateRecord;
  lastRefreshAt?: string;
  /** The last failure, said plainly (never a token); cleared by a good refresh. */
  lastError?: string;
  lastErrorAt?: string;
}

/** A secret: where it goes (env, scope), and its versions. */
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
  /** Kind "oauth": the provider, the client and the host-only tokens. */
  oauth?: OAuthRecord;
  /** Made by a manifest entry (issue #11). */
  origin?: SecretOriginRecord;
  /**
   * "infrastructure": host-only, never in a view (its scope is "host"); the other manifest
   * classes say where the value comes from.
   */
  class?: "per_install_generated" | "user_prompt" | "infrastructure" | "remote_fetch";
  /** A regex source the whole value must match (manifest `format`). */
  format?: string;
  /** How a per_install_generated (or generated infrastructure) value is made. */
  generator?: Readonly<Record<string, unknown>>;
  /** Where a remote_fetch value comes from, and how often (server/secrets/manifest/fetch.ts). */
  fetch?: {
    readonly command?: readonly string[];
    readonly file?: string;
    readonly intervalMs: number;
    readonly timeoutMs: number;
  };
  /** The last failed fetch, said plainly (never a value); cleared by a good one. */
  fetchError?: string;
  fetchErrorAt?: string;
  /** A cron expression: regenerate (generated) or re-fetch (fetched) on schedule. */
  rotate?: string;
  /**
   * When the current value stops working (ISO 8601), as a person said (`--expires-at`): shown
   * by `list` and `status` and warned about ahead of time (secrets/expiry.ts). Record-level,
   * unlike a version's `expiresAt` (an OAuth access token's, from its provider). Cleared by a
   * rotation that gives none: an expiry belongs to the value it was set for.
   */
  valueExpiresAt?: string;
  /** 0 for an oauth credential that holds no access token (before login, after logout). */
  currentVersion: number;
  versions: SecretVersionRecord[];
  createdAt: string;
  updatedAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/**
 * Where a manifest-made secret comes from: the manifest, its entry, and for a per-VM value
 * the VM it was made for.
 */
export interface SecretOriginRecord {
  manifest: string;
  entry: string;
  vm?: string;
}

/** A manifest as applied: its validated text's entries, bound to a VM or a group. */
export interface ManifestRecord {
  name: string;
  description: string;
  /** "vm:NAME" or "group:NAME". */
  bind: string;
  /** The entries as validated (server/secrets/manifest/schema.ts); opaque to the store. */
  entries: readonly Readonly<Record<string, unknown>>[];
  createdAt: string;
  updatedAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/** A group of VMs that group-scoped secrets reach. */
export interface GroupRecord {
  name: string;
  createdAt: string;
  /**
   * The teams bound to this group (issue #13), sorted; absent in older documents. A team is
   * the set of groups that name it: it lives here, not in a section of its own.
   */
  teams?: string[];
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/** A token, kept only as its keyed hash. */
export interface TokenRecord {
  /** Public id: a prefix of the hash, for listing and revoking. */
  id: string;
  hash: string;
  createdAt: string;
}

/** A VM: its groups and its tokens. */
export interface VmRecord {
  name: string;
  groups: string[];
  tokens: TokenRecord[];
  createdAt: string;
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/** What a user may do (server/secrets/permissions.ts). */
export type RoleRecord = "admin" | "operator" | "viewer";

/**
 * A user and its token (issue #13); the section keeps its older name, adminTokens. A record
 * written before users existed has no `role`: it is a user of role admin named after its
 * token, which is how every admin token keeps working as it did. A user created without a
 * token has `id` and `hash` empty until one is issued.
 */
export interface AdminTokenRecord extends TokenRecord {
  name: string;
  /** Absent in older documents: admin. */
  role?: RoleRecord;
  /** The teams the user is in, sorted; absent means none. */
  teams?: string[];
  /** Store revision of the last put of this record (stamped by the store). */
  modRevision: number;
}

/** What a mutation changed: for watchers (which views it may touch). */
export type Change =
  | { kind: "secret"; name: string; scopes: string[] }
  | { kind: "vm"; vm: string }
  | { kind: "group"; group: string; vms: string[] }
  | { kind: "token"; vm?: string; admin?: string }
  /** A manifest changed: the VMs it is bound to (a scope, as for secrets) may be affected. */
  | { kind: "manifest"; name: string; scopes: string[] }
  | { kind: "keyring" };

/** The record kinds, by the document section that holds them (keyed by `name`). */
export interface RecordKinds {
  secrets: SecretRecord;
  groups: GroupRecord;
  vms: VmRecord;
  adminTokens: AdminTokenRecord;
  manifests: ManifestRecord;
}

/** A document section of records keyed by name. */
export type Section = keyof RecordKinds;

/** Every section, in the order the document holds them. */
export const SECTIONS: readonly Section[] = [
  "secrets",
  "groups",
  "vms",
  "adminTokens",
  "manifests",
];

/** One record put: the record as the store froze it, `modRevision` stamped. */
export interface RecordPut<S extends Section = Section> {
  section: S;
  name: string;
  record: Readonly<RecordKinds[S]>;
}

/** One record removed. */
export interface RecordDelete {
  section: Section;
  name: string;
}

/**
 * What one durable write carries: the record-level puts and deletes of one or more
 * mutations, merged in revision order (a name appears at most once, in `puts` or in
 * `deletes`), and the keyring if one of them set it. Records are frozen and shared with the
 * store's documents: a driver may keep them as they are, never edit them.
 */
export interface ChangeSet {
  /** The revision the store is at once this set is applied (its last mutation's). */
  revision: number;
  puts: readonly RecordPut[];
  /** Removals; one of a record the driver does not hold is a no-op. */
  deletes: readonly RecordDelete[];
  /** The keyring after this set, when a mutation in it set one. */
  keyring?: Readonly<KeyringRecord>;
}

/**
 * Where the store's document lives. The store hands a driver change sets, never the
 * document, so a driver writes what changed and nothing else (a journal line, an etcd
 * transaction) and cannot miss a change nobody told it about. See README "Architecture".
 */
export interface StoreDriver {
  /**
   * The document as last durably committed (a new object the caller may change), or
   * undefined when nothing was ever committed. Throws a SecretsError naming what is damaged.
   */
  load(): Promise<StoreData | undefined>;
  /**
   * Resolves only once `set` is durable. Sets come in increasing revision order: one at or
   * below the last committed revision is refused (throws) and changes nothing; so does a
   * failed write, which leaves what was committed before it intact.
   */
  commit(set: ChangeSet): Promise<void>;
  /** Waits for work in flight and releases the driver's resources. */
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
    manifests: {},
  };
}
