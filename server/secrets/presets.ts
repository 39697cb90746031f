/** Provider presets: the env var a provider's SDKs read by default. */
export const PROVIDER_ENV: Readonly<Record<string, string>> = {
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  gemini: "GEMINI_API_KEY",
  google: "GOOGLE_API_KEY",
  mistral: "MISTRAL_API_KEY",
  cohere: "COHERE_API_KEY",
  groq: "GROQ_API_KEY",
  together: "TOGETHER_API_KEY",
  fireworks: "FIREWORKS_API_KEY",
  deepseek: "DEEPSEEK_API_KEY",
  xai: "XAI_API_KEY",
  openrouter: "OPENROUTER_API_KEY",
  perplexity: "PERPLEXITY_API_KEY",
  replicate: "REPLICATE_API_TOKEN",
  huggingface: "HF_TOKEN",
  voyage: "VOYAGE_API_KEY",
  elevenlabs: "ELEVENLABS_API_KEY",
  pinecone: "PINECONE_API_KEY",
  github: "GITHUB_TOKEN",
  gitlab: "GITLAB_TOKEN",
  npm: "NPM_TOKEN",
  stripe: "STRIPE_SECRET_KEY",
  slack: "SLACK_BOT_TOKEN",
  sentry: "SENTRY_AUTH_TOKEN",
  cloudflare: "CLOUDFLARE_API_TOKEN",
  digitalocean: "DIGITALOCEAN_TOKEN",
  linear: "LINEAR_API_KEY",
  datadog: "DD_API_KEY",
};

/** The env var for a secret: the provider's preset, else the name upper-cased. */
export function defaultEnvName(name: string, provider: string): string {
  const preset = PROVIDER_ENV[provider || name];
  if (preset) return preset;
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
}
