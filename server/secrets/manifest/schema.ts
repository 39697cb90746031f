/**
 * Manifest types (issue #11): what a VM or a group of VMs needs, entry by entry. Plain,
 * JSON-serialisable data: `validateManifest` returns this form with every default filled in,
 * and the store persists it as is.
 */

/** The four classes of the deployment-secrets model, in the order the issue lists them. */
export const ENTRY_CLASSES = [
  "per_install_generated",
  "user_prompt",
  "infrastructure",
  "remote_fetch",
] as const;

/**
 * - `per_install_generated`: generated from the OS CSPRNG, one value per VM.
 * - `user_prompt`: provided by a person, checked against `format`.
 * - `infrastructure`: host-only; never enters a VM's view, so it has no `env`.
 * - `remote_fetch`: fetched on the host from a command or a file, on an interval.
 */
export type EntryClass = (typeof ENTRY_CLASSES)[number];

/** Alphabets of the random generator: alnum [A-Za-z0-9], hex [0-9a-f], base64 [A-Za-z0-9+/], base64url [A-Za-z0-9_-]. */
export const CHARSETS = ["alnum", "hex", "base64", "base64url"] as const;

/** One of `CHARSETS`. */
export type Charset = (typeof CHARSETS)[number];

/** How a value is generated: `length` characters of `charset`, or a v4 UUID. */
export type Generator = { type: "random"; length: number; charset: Charset } | { type: "uuid" };

/**
 * Where a fetched value comes from: exactly one of `command` (argv, run without a shell) or
 * `file` (an absolute path on the host).
 */
export interface FetchSpec {
  /** argv; argv[0] is an absolute path or a bare program name looked up in the daemon's PATH. */
  command?: string[];
  /** An absolute path on the host (a mounted secret, a systemd credential). */
  file?: string;
  /** How often the value is fetched again. @default 300000 */
  intervalMs: number;
  /** How long one fetch may take before it counts as failed. @default 10000 */
  timeoutMs: number;
}

/** One thing a VM needs. Defaults are filled in by `validateManifest`. */
export interface ManifestEntry {
  /** Unique within the manifest; `^[a-z][a-z0-9_]{0,31}$`. */
  id: string;
  class: EntryClass;
  /** The env var the VM sees; required for every class except `infrastructure`, where it is refused. */
  env?: string;
  /** Free text, at most 1024 characters. @default "" */
  description: string;
  /** user_prompt only: what the person is asked. @default the id */
  label?: string;
  /** A JS regex source (`u` flag) the WHOLE value must match: it is run as `^(?:format)$`. */
  format?: string;
  /** A VM missing a required entry is incomplete. @default true */
  required: boolean;
  /** Required for per_install_generated, optional for infrastructure, refused elsewhere. */
  generator?: Generator;
  /** Required for remote_fetch, optional for infrastructure, refused elsewhere. */
  fetch?: FetchSpec;
  /** A node-cron expression (5 or 6 fields): regenerate or re-fetch on schedule. Generated or fetched entries only. */
  rotate?: string;
}

/** A named list of entries bound to a VM or a group. */
export interface Manifest {
  /** `^[a-z][a-z0-9-]{0,23}$` */
  name: string;
  /** @default "" */
  description: string;
  /** 1 to 256 entries, ids and env vars unique. */
  entries: ManifestEntry[];
}

/** Bounds enforced by `validateManifest` and `generateValue`. */
export const MANIFEST_LIMITS = {
  /** Whole manifest text, UTF-8 bytes. */
  maxTextBytes: 256 * 1024,
  maxEntries: 256,
  maxDescription: 1024,
  maxLabel: 256,
  minLength: 8,
  maxLength: 4096,
  minIntervalMs: 1000,
  maxIntervalMs: 7 * 24 * 3600 * 1000,
  defaultIntervalMs: 300_000,
  minTimeoutMs: 100,
  maxTimeoutMs: 60_000,
  defaultTimeoutMs: 10_000,
  maxArgs: 256,
  maxArgChars: 4096,
  maxPathChars: 4096,
  maxRotateChars: 128,
} as const;
