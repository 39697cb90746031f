/**
 * Built-in templates for API-key providers and source control (issue #13). Formats and test
 * endpoints are the providers' documented ones; a format only says what every key of that
 * provider looks like today, and is kept loose where the provider has changed it before
 * (OpenAI's sk-proj-/sk-svcacct-, GitLab's longer tokens). Env names are the ones the
 * providers' SDKs and CLIs read.
 */
import type { FieldInput, TemplateInput } from "./input.js";

const bearer = (field: string) =>
  ({ type: "header", name: "Authorization", value: `Bearer {${field}}` }) as const;

/** A base URL field: the SDK's default, overridable per credential (proxies, gateways). */
function baseUrl(dflt: string, env?: string): FieldInput {
  return {
    key: "base_url",
    label: "API base URL",
    type: "url",
    default: dflt,
    help: "Change only for a proxy or a compatible gateway",
    ...(env === undefined ? {} : { env }),
  };
}

export const API_TEMPLATES: TemplateInput[] = [
  {
    name: "openai",
    title: "OpenAI API key",
    category: "ai",
    fields: [
      {
        key: "api_key",
        label: "API key",
        type: "secret",
        format: "sk-[A-Za-z0-9_-]{20,}",
        formatHint: "an OpenAI key starts with sk- (sk-proj-…, sk-svcacct-…)",
        env: "OPENAI_API_KEY",
      },
      {
        key: "organization",
        label: "Organization ID",
        type: "text",
        required: false,
        format: "org-[A-Za-z0-9]{8,64}",
        formatHint: "org-…",
        env: "OPENAI_ORG_ID",
      },
      baseUrl("https://api.openai.com/v1", "OPENAI_BASE_URL"),
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{base_url}",
        path: "/models",
        auth: bearer("api_key"),
        okStatus: [200],
      },
    ],
  },
  {
    name: "anthropic",
    title: "Anthropic API key",
    category: "ai",
    fields: [
      {
        key: "api_key",
        label: "API key",
        type: "secret",
        format: "sk-ant-[A-Za-z0-9_-]{20,}",
        formatHint: "an Anthropic key starts with sk-ant-",
        env: "ANTHROPIC_API_KEY",
      },
      baseUrl("https://api.anthropic.com", "ANTHROPIC_BASE_URL"),
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{base_url}",
        path: "/v1/models",
        auth: { type: "header", name: "x-api-key", value: "{api_key}" },
        headers: { "anthropic-version": "2023-06-01" },
        okStatus: [200],
      },
    ],
  },
  {
    name: "gemini",
    title: "Google Gemini API key",
    category: "ai",
    fields: [
      {
        key: "api_key",
        label: "API key",
        type: "secret",
        format: "AIza[0-9A-Za-z_-]{35}",
        formatHint: "a Google API key is AIza and 35 more characters",
        env: "GEMINI_API_KEY",
      },
      baseUrl("https://generativelanguage.googleapis.com"),
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{base_url}",
        path: "/v1beta/models",
        auth: { type: "header", name: "x-goog-api-key", value: "{api_key}" },
        okStatus: [200],
      },
    ],
  },
  {
    name: "openrouter",
    title: "OpenRouter API key",
    category: "ai",
    fields: [
      {
        key: "api_key",
        label: "API key",
        type: "secret",
        format: "sk-or-[A-Za-z0-9_-]{20,}",
        formatHint: "an OpenRouter key starts with sk-or- (sk-or-v1-…)",
        env: "OPENROUTER_API_KEY",
      },
      baseUrl("https://openrouter.ai/api/v1"),
    ],
    // GET /key describes the calling key: authenticated, free, no model call.
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{base_url}",
        path: "/key",
        auth: bearer("api_key"),
        okStatus: [200],
      },
    ],
  },
  {
    name: "mistral",
    title: "Mistral AI API key",
    category: "ai",
    fields: [
      {
        key: "api_key",
        label: "API key",
        type: "secret",
        format: "[A-Za-z0-9]{32}",
        formatHint: "a Mistral key is 32 letters and digits",
        env: "MISTRAL_API_KEY",
      },
      baseUrl("https://api.mistral.ai"),
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{base_url}",
        path: "/v1/models",
        auth: bearer("api_key"),
        okStatus: [200],
      },
    ],
  },
  {
    name: "github",
    title: "GitHub token",
    category: "source-control",
    fields: [
      {
        key: "token",
        label: "Token",
        type: "secret",
        format: "(gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})",
        formatHint: "a GitHub token starts with ghp_, gho_, ghu_, ghs_, ghr_ or github_pat_",
        env: "GITHUB_TOKEN",
      },
      {
        key: "api_url",
        label: "API URL",
        type: "url",
        default: "https://api.github.com",
        help: "GitHub Enterprise Server: https://HOST/api/v3",
        env: "GITHUB_API_URL",
      },
    ],
    // GET /user answers 200 for personal and OAuth tokens; an app installation token (ghs_) has
    // no user and gets 403, which the test reports as a failure with its status.
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{api_url}",
        path: "/user",
        auth: bearer("token"),
        headers: {
          Accept: "application/vnd.github+json",
          "X-GitHub-Api-Version": "2022-11-28",
          "User-Agent": "vm-auth",
        },
        okStatus: [200],
      },
    ],
  },
  {
    name: "gitlab",
    title: "GitLab access token",
    category: "source-control",
    fields: [
      {
        key: "token",
        label: "Personal, project or group access token",
        type: "secret",
        format: "glpat-[A-Za-z0-9_.-]{20,}",
        formatHint: "a GitLab access token starts with glpat-",
        env: "GITLAB_TOKEN",
      },
      {
        key: "url",
        label: "GitLab URL",
        type: "url",
        default: "https://gitlab.com",
        help: "Self-managed: https://gitlab.example.com",
        env: "GITLAB_HOST",
      },
    ],
    tests: [
      {
        kind: "http",
        method: "GET",
        baseUrl: "{url}",
        path: "/api/v4/user",
        auth: { type: "header", name: "PRIVATE-TOKEN", value: "{token}" },
        okStatus: [200],
      },
    ],
  },
  {
    name: "http-api",
    title: "Generic HTTP API token",
    category: "other",
    description: "Any HTTP API that takes a token in a header",
    fields: [
      { key: "base_url", label: "API base URL", type: "url", env: "API_BASE_URL" },
      { key: "token", label: "Token", type: "secret", env: "API_TOKEN" },
      {
        key: "header",
        label: "Header name",
        type: "text",
        default: "Authorization",
        format: "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}",
        formatHint: "an HTTP header name",
      },
      {
        key: "scheme",
        label: "Token prefix",
        type: "select",
        options: ["bearer", "token", "raw"],
        default: "bearer",
        help: "bearer: 'Bearer TOKEN'; token: 'Token TOKEN'; raw: the token alone",
      },
      {
        key: "test_path",
        label: "Path to test with",
        type: "text",
        default: "/",
        format: "/[\\x21-\\x7e]{0,255}",
        formatHint: "a path starting with /",
        help: "An authenticated GET that answers 200 or 204, e.g. /v1/me",
      },
    ],
    tests: (["bearer", "token", "raw"] as const).map((scheme) => ({
      kind: "http" as const,
      method: "GET" as const,
      baseUrl: "{base_url}",
      path: "{test_path}",
      auth: {
        type: "header" as const,
        name: "{header}",
        value: { bearer: "Bearer {token}", token: "Token {token}", raw: "{token}" }[scheme],
      },
      okStatus: [200, 204],
      when: { scheme },
    })),
  },
];
