/**
 * Built-in templates for clouds, hypervisors, clusters and registries (issue #13). Env names
 * are the ones the usual tools read (the AWS and Azure SDKs, Terraform's vSphere provider);
 * where no tool agrees on one (Proxmox, a kubeconfig's content) the name is the product's in
 * upper case.
 */
import type { FieldInput, TemplateInput } from "./input.js";

const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const HOST = "[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?";

function guid(key: string, label: string, env: string, required = true): FieldInput {
  return { key, label, type: "text", required, format: UUID, formatHint: "a GUID", env };
}

/** "false" | "true", default "false": skip TLS certificate checks for a self-signed host. */
function insecure(env?: string): FieldInput {
  return {
    key: "insecure",
    label: "Skip TLS certificate checks",
    type: "select",
    options: ["false", "true"],
    default: "false",
    help: "true only for a self-signed certificate you cannot replace",
    ...(env === undefined ? {} : { env }),
  };
}

export const INFRA_TEMPLATES: TemplateInput[] = [
  {
    name: "aws",
    title: "AWS access key",
    category: "cloud",
    fields: [
      {
        key: "access_key_id",
        label: "Access key ID",
        type: "text",
        format: "(AKIA|ASIA)[A-Z0-9]{16}",
        formatHint: "AKIA (long-term) or ASIA (temporary) and 16 capitals or digits",
        env: "AWS_ACCESS_KEY_ID",
      },
      {
        key: "secret_access_key",
        label: "Secret access key",
        type: "secret",
        format: "[A-Za-z0-9/+]{40}",
        formatHint: "40 characters of A-Z, a-z, 0-9, / and +",
        env: "AWS_SECRET_ACCESS_KEY",
      },
      {
        key: "region",
        label: "Region",
        type: "text",
        default: "us-east-1",
        format: "[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}",
        formatHint: "a region code such as us-east-1 or eu-west-3",
        env: "AWS_DEFAULT_REGION",
      },
      {
        key: "session_token",
        label: "Session token (temporary ASIA keys only)",
        type: "secret",
        required: false,
        env: "AWS_SESSION_TOKEN",
      },
    ],
    tests: [
      {
        kind: "aws_sts",
        fields: {
          access_key_id: "access_key_id",
          secret_access_key: "secret_access_key",
          session_token: "session_token",
          region: "region",
        },
      },
    ],
  },
  {
    name: "azure",
    title: "Azure service principal",
    category: "cloud",
    fields: [
      guid("tenant_id", "Directory (tenant) ID", "AZURE_TENANT_ID"),
      guid("client_id", "Application (client) ID", "AZURE_CLIENT_ID"),
      { key: "client_secret", label: "Client secret", type: "secret", env: "AZURE_CLIENT_SECRET" },
      guid("subscription_id", "Subscription ID", "AZURE_SUBSCRIPTION_ID", false),
    ],
    // The client-credentials token request azure-identity makes: 200 with a token, 400/401 not.
    tests: [
      {
        kind: "http",
        method: "POST",
        baseUrl: "https://login.microsoftonline.com",
        path: "/{tenant_id}/oauth2/v2.0/token",
        auth: { type: "none" },
        form: {
          grant_type: "client_credentials",
          client_id: "{client_id}",
          client_secret: "{client_secret}",
          scope: "https://management.azure.com/.default",
        },
        okStatus: [200],
      },
    ],
  },
  {
    name: "gcp",
    title: "Google Cloud service account",
    category: "cloud",
    // No connection test yet: it needs an RS256-signed JWT exchanged at oauth2.googleapis.com.
    fields: [
      {
        key: "service_account_json",
        label: "Service-account key file (JSON)",
        type: "json",
        secret: true,
        check: "gcp_service_account",
        env: "GOOGLE_APPLICATION_CREDENTIALS_JSON",
      },
      {
        key: "project_id",
        label: "Project ID",
        type: "text",
        required: false,
        format: "[a-z][a-z0-9-]{4,28}[a-z0-9]",
        formatHint: "6 to 30 lower-case letters, digits and hyphens",
        env: "GOOGLE_CLOUD_PROJECT",
      },
    ],
  },
  {
    name: "proxmox",
    title: "Proxmox VE login",
    category: "virtualization",
    fields: [
      {
        key: "url",
        label: "Proxmox URL",
        type: "url",
        help: "https://pve.example.com:8006",
        env: "PROXMOX_URL",
      },
      {
        key: "auth_method",
        label: "Authenticate with",
        type: "select",
        options: ["api_token", "password"],
        default: "api_token",
      },
      {
        key: "token_id",
        label: "Token ID",
        type: "text",
        format: "[^@\\s!]{1,64}@[A-Za-z0-9._-]{1,32}![A-Za-z][A-Za-z0-9._-]{0,63}",
        formatHint: "USER@REALM!TOKENNAME, as Proxmox shows it",
        env: "PROXMOX_TOKEN_ID",
        when: { auth_method: "api_token" },
      },
      {
        key: "token_secret",
        label: "Token secret",
        type: "secret",
        format: UUID,
        formatHint: "the UUID Proxmox showed once",
        env: "PROXMOX_TOKEN_SECRET",
        when: { auth_method: "api_token" },
      },
      {
        key: "user",
        label: "User",
        type: "text",
        format: "[^@\\s!:]{1,64}",
        formatHint: "the user name without @realm",
        env: "PROXMOX_USER",
        when: { auth_method: "password" },
      },
      {
        key: "realm",
        label: "Realm",
        type: "text",
        default: "pam",
        format: "[A-Za-z0-9._-]{1,32}",
        formatHint: "pam, pve or a configured realm",
        env: "PROXMOX_REALM",
        when: { auth_method: "password" },
      },
      {
        key: "password",
        label: "Password",
        type: "secret",
        env: "PROXMOX_PASSWORD",
        when: { auth_method: "password" },
      },
      insecure("PROXMOX_INSECURE"),
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{url}",
        path: "/api2/json/version",
        auth: {
          type: "header",
          name: "Authorization",
          value: "PVEAPIToken={token_id}={token_secret}",
        },
        okStatus: [200],
        insecureField: "insecure",
        when: { auth_method: "api_token" },
      },
      {
        kind: "http",
        method: "POST",
        baseUrl: "{url}",
        path: "/api2/json/access/ticket",
        auth: { type: "none" },
        form: { username: "{user}@{realm}", password: "{password}" },
        okStatus: [200],
        insecureField: "insecure",
        when: { auth_method: "password" },
      },
    ],
  },
  {
    name: "vsphere",
    title: "VMware vSphere (vCenter) login",
    category: "virtualization",
    fields: [
      {
        key: "server",
        label: "vCenter server",
        type: "text",
        format: HOST,
        formatHint: "a host name or address, with :port if not 443",
        env: "VSPHERE_SERVER",
      },
      {
        key: "user",
        label: "User",
        type: "text",
        help: "administrator@vsphere.local",
        env: "VSPHERE_USER",
      },
      { key: "password", label: "Password", type: "secret", env: "VSPHERE_PASSWORD" },
      insecure("VSPHERE_ALLOW_UNVERIFIED_SSL"),
    ],
    // vSphere 7.0 U2+: POST /api/session with basic auth answers 201 and a session id.
    tests: [
      {
        kind: "http",
        method: "POST",
        baseUrl: "https://{server}",
        path: "/api/session",
        auth: { type: "basic", userField: "user", passwordField: "password" },
        okStatus: [201],
        insecureField: "insecure",
      },
    ],
  },
  {
    name: "kubernetes",
    title: "Kubernetes kubeconfig",
    category: "virtualization",
    description: "KUBECONFIG names a file, so the content goes to KUBECONFIG_DATA",
    fields: [
      {
        key: "kubeconfig",
        label: "kubeconfig (YAML or JSON)",
        type: "secret",
        check: "kubeconfig",
        env: "KUBECONFIG_DATA",
      },
    ],
  },
  {
    name: "docker-registry",
    title: "Container registry login",
    category: "cloud",
    // No test yet: Docker Hub and ghcr.io answer basic auth on /v2/ with a token challenge, so
    // a correct login would fail a basic-auth GET; the token flow is a later test kind.
    fields: [
      {
        key: "server",
        label: "Registry",
        type: "text",
        default: "docker.io",
        format: HOST,
        formatHint: "a registry host, with :port if needed",
        env: "DOCKER_REGISTRY",
      },
      { key: "username", label: "User", type: "text", env: "DOCKER_USERNAME" },
      {
        key: "password",
        label: "Password or access token",
        type: "secret",
        env: "DOCKER_PASSWORD",
      },
    ],
  },
];
