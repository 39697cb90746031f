/**
 * Credential templates (issue #13, "Templates" and "Connection tests"): a typed multi-field
 * credential. Plain, JSON-serialisable data, so a user template read from
 * `<data dir>/templates/NAME.json` and a built-in have the same shape; `validateTemplate`
 * (validate-template.ts) returns this form with every default filled in.
 *
 * A field is either secret (sealed like any value, never listed) or visible metadata (host,
 * region, user). Each field may map to one env var of a VM's view.
 */

/** Where a template is listed; a closed set so listings group the same way everywhere. */
export const CATEGORIES = [
  "ai",
  "cloud",
  "virtualization",
  "source-control",
  "database",
  "messaging",
  "other",
] as const;

/** One of `CATEGORIES`. */
export type Category = (typeof CATEGORIES)[number];

/**
 * - `text`: one line of printable text.
 * - `secret`: any text without NUL (multi-line allowed: PEM keys, kubeconfigs); always sealed.
 * - `select`: one of `options`.
 * - `url`: an absolute http(s) URL.
 * - `port`: a decimal integer 1 to 65535.
 * - `json`: a JSON document (sealed when the field sets `secret`).
 */
export const FIELD_TYPES = ["text", "secret", "select", "url", "port", "json"] as const;

/** One of `FIELD_TYPES`. */
export type FieldType = (typeof FIELD_TYPES)[number];

/**
 * Content checks beyond the type, for formats a regex cannot express. A closed set: a user
 * template can name one, never supply code.
 * - `gcp_service_account`: a JSON object with type "service_account", client_email and a PEM
 *   private_key.
 * - `kubeconfig`: a kubeconfig (JSON, or YAML checked by its top-level keys without a YAML parser).
 */
export const CONTENT_CHECKS = ["gcp_service_account", "kubeconfig"] as const;

/** One of `CONTENT_CHECKS`. */
export type ContentCheck = (typeof CONTENT_CHECKS)[number];

/**
 * A condition on earlier select fields: every listed field must be active and have one of the
 * listed options (`{ auth_method: ["api_token"] }`). A field whose condition is false is
 * inactive: never asked, never defaulted, and refused when given.
 */
export type Condition = Readonly<Record<string, readonly string[]>>;

/** One field of a template. Defaults are filled in by `validateTemplate`. */
export interface TemplateField {
  /** Unique within the template; `^[a-z][a-z0-9_]{0,31}$`. The key `--field k=v` uses. */
  key: string;
  /** What a prompt shows. @default the key */
  label: string;
  type: FieldType;
  /** Sealed and never listed. Always true for `secret`; refused for `select` and `port`. @default type === "secret" */
  secret: boolean;
  /** An active field without a value (and without a default) is refused. @default true */
  required: boolean;
  /** Applied when an active field is not given. Never on a secret field. */
  default?: string;
  /** One line shown under the prompt and by `templates show`. @default "" */
  help: string;
  /** `select` only, and required there: the allowed values, 1 to 32, unique. */
  options?: readonly string[];
  /** A JS regex source the WHOLE value must match (`^(?:format)$`, `u` flag); see manifest/format.ts. */
  format?: string;
  /** Said instead of "does not match the format" (what the format is, never the value). */
  formatHint?: string;
  /** A content check beyond the type. */
  check?: ContentCheck;
  /** The env var this field becomes in a VM's view; a field without one is host-side metadata. */
  env?: string;
  /** When the field applies; absent means always. */
  when?: Condition;
}

/** HTTP methods a connection test may use: no method that changes the provider's state by design. */
export const HTTP_METHODS = ["GET", "HEAD", "POST"] as const;

/**
 * Where the secret goes in a test request. String values are templates: `{key}` is replaced by
 * that field's value (`"Bearer {api_key}"`); `{{` and `}}` are literal braces.
 * - `header`: one header (`Authorization: Bearer {api_key}`, `x-api-key: {api_key}`).
 * - `query`: one query parameter.
 * - `basic`: HTTP basic auth from two fields.
 * - `none`: the secret travels in `form` (an OAuth token request) or not at all.
 */
export type HttpAuth =
  | { type: "header"; name: string; value: string }
  | { type: "query"; name: string; value: string }
  | { type: "basic"; userField: string; passwordField: string }
  | { type: "none" };

/**
 * A test as one HTTP request. The URL is `baseUrl` + `path`, both templates; field values are
 * percent-encoded in `path` and in `query`, inserted as they are in `baseUrl` (a url field's
 * value is a base URL, which is how a credential overrides it: proxies, self-hosted endpoints).
 */
export interface HttpTest {
  kind: "http";
  method: (typeof HTTP_METHODS)[number];
  /** An absolute http(s) URL once filled: `https://api.openai.com/v1` or `{base_url}`. */
  baseUrl: string;
  /** Appended to the base URL; starts with `/`. */
  path: string;
  auth: HttpAuth;
  /** Extra headers (templates). @default {} */
  headers: Readonly<Record<string, string>>;
  /** An `application/x-www-form-urlencoded` body (templates); POST only. */
  form?: Readonly<Record<string, string>>;
  /** The statuses that mean "works"; any other is a failure reported with its status. */
  okStatus: readonly number[];
  /** A select field whose value "true" turns off TLS certificate checks (self-signed hosts). */
  insecureField?: string;
  /** The test applies only when this holds (a test per auth method). */
  when?: Condition;
}

/** Connect, authenticate, `SELECT 1`. `fields` names the template fields holding each part. */
export interface PostgresTest {
  kind: "postgres";
  fields: Readonly<
    Partial<Record<"url" | "host" | "port" | "database" | "user" | "password" | "sslmode", string>>
  >;
  when?: Condition;
}

/** Connect, EHLO, (STARTTLS), AUTH. `security` is a field with starttls | tls | none. */
export interface SmtpTest {
  kind: "smtp";
  fields: Readonly<Partial<Record<"host" | "port" | "user" | "password" | "security", string>>>;
  when?: Condition;
}

/**
 * STS GetCallerIdentity signed with SigV4 from the credential. Declared so the aws template
 * can name its test; the runner that signs it is not part of this module.
 */
export interface AwsStsTest {
  kind: "aws_sts";
  fields: Readonly<
    Partial<Record<"access_key_id" | "secret_access_key" | "session_token" | "region", string>>
  >;
  when?: Condition;
}

/** How a credential is tested. */
export type ConnectionTest = HttpTest | PostgresTest | SmtpTest | AwsStsTest;

/** The test kinds, for validation. */
export const TEST_KINDS = ["http", "postgres", "smtp", "aws_sts"] as const;

/** A credential template. */
export interface Template {
  /** `^[a-z][a-z0-9-]{0,31}$`; a user template's file is `<name>.json`. */
  name: string;
  /** One line for listings. */
  title: string;
  category: Category;
  /** @default "" */
  description: string;
  /** 1 to 64 fields, in prompt order; a `when` may only name an earlier field. */
  fields: readonly TemplateField[];
  /** Tried in order; the first whose `when` holds is the credential's test. @default [] */
  tests: readonly ConnectionTest[];
  /** `builtin` or the file it came from (`templates/acme.json`). */
  source: string;
}

/** Bounds enforced by `validateTemplate`. */
export const TEMPLATE_LIMITS = {
  maxFields: 64,
  maxOptions: 32,
  maxTests: 4,
  maxTitle: 128,
  maxDescription: 1024,
  maxHelp: 512,
  maxLabel: 128,
  maxOption: 64,
  maxDefault: 1024,
  maxTemplateText: 1024,
  maxFileBytes: 256 * 1024,
} as const;
