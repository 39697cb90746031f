/**
 * Built-in templates for databases and mail (issue #13). Env names are libpq's (PGHOST …,
 * or DATABASE_URL, which most frameworks read) and, for SMTP where no tool agrees, SMTP_*.
 */
import type { TemplateInput } from "./input.js";

export const DATA_TEMPLATES: TemplateInput[] = [
  {
    name: "postgres",
    title: "PostgreSQL connection",
    category: "database",
    fields: [
      {
        key: "mode",
        label: "Give the connection as",
        type: "select",
        options: ["fields", "url"],
        default: "fields",
        help: "fields: host, port, database, user, password; url: one postgres:// URL",
      },
      {
        key: "url",
        label: "Connection URL",
        type: "secret",
        format: "postgres(ql)?://[^\\s]{1,4096}",
        formatHint: "postgres://user:password@host:5432/db",
        env: "DATABASE_URL",
        when: { mode: "url" },
      },
      {
        key: "host",
        label: "Host",
        type: "text",
        format: "[^\\s]{1,255}",
        formatHint: "a host name, address or socket dir",
        env: "PGHOST",
        when: { mode: "fields" },
      },
      {
        key: "port",
        label: "Port",
        type: "port",
        default: "5432",
        env: "PGPORT",
        when: { mode: "fields" },
      },
      {
        key: "database",
        label: "Database",
        type: "text",
        env: "PGDATABASE",
        when: { mode: "fields" },
      },
      { key: "user", label: "User", type: "text", env: "PGUSER", when: { mode: "fields" } },
      {
        key: "password",
        label: "Password",
        type: "secret",
        env: "PGPASSWORD",
        when: { mode: "fields" },
      },
      {
        key: "sslmode",
        label: "SSL mode",
        type: "select",
        options: ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        default: "prefer",
        env: "PGSSLMODE",
        when: { mode: "fields" },
      },
    ],
    tests: [
      { kind: "postgres", fields: { url: "url" }, when: { mode: "url" } },
      {
        kind: "postgres",
        fields: {
          host: "host",
          port: "port",
          database: "database",
          user: "user",
          password: "password",
          sslmode: "sslmode",
        },
        when: { mode: "fields" },
      },
    ],
  },
  {
    name: "smtp",
    title: "SMTP server login",
    category: "messaging",
    fields: [
      {
        key: "host",
        label: "Host",
        type: "text",
        format: "[A-Za-z0-9.-]{1,253}",
        formatHint: "a host name or address",
        env: "SMTP_HOST",
      },
      {
        key: "security",
        label: "Security",
        type: "select",
        options: ["starttls", "tls", "none"],
        default: "starttls",
        help: "starttls: port 587; tls: implicit TLS, port 465; none: plaintext (local relays only)",
        env: "SMTP_SECURITY",
      },
      // No default: the right port follows security (587, 465, 25), and a fixed 587 would
      // send implicit TLS to the STARTTLS port. The test runner picks it from security.
      {
        key: "port",
        label: "Port",
        type: "port",
        required: false,
        help: "Leave empty for the usual port: 587 (starttls), 465 (tls), 25 (none)",
        env: "SMTP_PORT",
      },
      { key: "user", label: "User", type: "text", env: "SMTP_USER" },
      { key: "password", label: "Password", type: "secret", env: "SMTP_PASSWORD" },
    ],
    tests: [
      {
        kind: "smtp",
        fields: {
          host: "host",
          port: "port",
          user: "user",
          password: "password",
          security: "security",
        },
      },
    ],
  },
];
