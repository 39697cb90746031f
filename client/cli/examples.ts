/**
 * Examples for every command's help, in one place, keyed by command path ("vm add",
 * "rotate"); main.ts renders them as an EXAMPLES section under citty's usage. Each line is a
 * real command line (a shell comment may follow `  # `), and test/cli-ux.test.ts walks the
 * whole command tree: a runnable command without examples, or an example naming a command or
 * option that does not exist, fails it. A new command adds its examples here.
 */

/** Example command lines by command path; "" is `secretsctl` itself. */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  "": [
    "secretsctl add openai                   # prompts for the value without echo",
    "secretsctl vm add web1 --group prod     # prints web1's token once",
    "secretsctl export web1                  # what web1 sees, as dotenv",
    "secretsctl --json vm list               # any command's output as JSON",
  ],
  add: [
    "secretsctl add openai                   # value from a prompt, without echo",
    'echo "$OPENAI_KEY" | secretsctl add openai',
    "secretsctl add db-password --scope group:prod --env DATABASE_PASSWORD",
    "secretsctl add stripe --scope vm:web1 --expires-at +90d --label team=billing",
    "secretsctl add gcp-sa --from-file sa.json --env GOOGLE_CREDENTIALS",
    "secretsctl add tls-key @key.pem         # the file, byte for byte",
  ],
  list: ["secretsctl list", "secretsctl list --scope group:prod", "secretsctl list --json"],
  get: [
    "secretsctl get openai",
    "secretsctl get openai --version 2",
    "secretsctl get gh --host-only          # an oauth credential's refresh token (audited)",
  ],
  update: [
    "secretsctl update openai --scope group:prod",
    "secretsctl update openai --env OPENAI_KEY --description 'billing account'",
    "secretsctl update openai --expires-at +30d",
    "secretsctl update openai --no-expires-at",
  ],
  remove: [
    "secretsctl remove openai",
    "secretsctl remove openai --yes   # no question on a terminal",
  ],
  rotate: [
    "secretsctl rotate openai               # new value from a prompt or stdin",
    "secretsctl rotate openai --plan        # which VMs and units it would reach; changes nothing",
    'echo "$NEW_KEY" | secretsctl rotate openai --expires-at +90d',
  ],
  versions: ["secretsctl versions openai"],
  usage: [
    "secretsctl usage openai                # which VMs hold it, when they got it, reads over 7 days",
    "secretsctl usage openai --window 24h",
    "secretsctl usage openai --json",
  ],
  rollback: ["secretsctl rollback openai 1"],
  export: [
    "secretsctl export web1",
    "secretsctl export web1 --format json",
    "secretsctl export web1 --format systemd > web1.env",
    'eval "$(secretsctl export web1 --format shell)"',
  ],
  run: [
    "secretsctl run --vm web1 -- node app.js",
    "secretsctl run --vm web1 --watch --signal SIGHUP --grace 5s -- ./server",
    "secretsctl run --server 192.168.122.1:3090 --token-file /etc/vm-auth/token -- env",
  ],
  import: [
    "secretsctl import .env --dry-run",
    "secretsctl import .env --scope vm:web1 --prefix web.",
    "secretsctl import .env --atomic         # every line or none",
    "secretsctl import .env --scope vm:web1 --move-scope --yes",
  ],
  status: ["secretsctl status", "secretsctl status --json"],
  version: ["secretsctl version", "secretsctl version --json", "secretsctl --version"],
  completion: [
    "source <(secretsctl completion bash)                                  # bash, this shell",
    "secretsctl completion bash > /etc/bash_completion.d/secretsctl        # bash, for good",
    'secretsctl completion zsh > "$fpath[1]/_secretsctl"                   # zsh, then: compinit',
    "secretsctl completion fish > ~/.config/fish/completions/secretsctl.fish   # fish",
  ],
  vm: ["secretsctl vm add web1 --group prod", "secretsctl vm list"],
  "vm add": [
    "secretsctl vm add web1                  # prints the token once, alone on stdout",
    "secretsctl vm add web1 --group prod --group gpu",
    "secretsctl vm add web1 --bundle web1.bundle --server-address 192.168.122.1:3090",
  ],
  "vm list": ["secretsctl vm list", "secretsctl vm list --json"],
  "vm remove": ["secretsctl vm remove web1"],
  "vm token": [
    "secretsctl vm token web1                # a new token; the old ones stop working",
    "secretsctl vm token web1 --keep         # a second token; the old ones keep working",
  ],
  "vm revoke": ["secretsctl vm revoke web1"],
  "vm groups": [
    "secretsctl vm groups web1 --add prod",
    "secretsctl vm groups web1 --add gpu --remove staging",
  ],
  group: ["secretsctl group add prod", "secretsctl group list"],
  "group add": ["secretsctl group add prod"],
  "group list": ["secretsctl group list"],
  "group remove": ["secretsctl group remove staging"],
  token: ["secretsctl token create ci", "secretsctl token list"],
  "token create": ["secretsctl token create ci          # prints the admin token once"],
  "token list": ["secretsctl token list"],
  "token revoke": ["secretsctl token revoke ci"],
  user: ["secretsctl user add alice --role operator --team web-team", "secretsctl user list"],
  "user add": [
    "secretsctl user add alice --role operator",
    "secretsctl user add bob --role viewer --team web-team",
  ],
  "user list": ["secretsctl user list", "secretsctl user list --json"],
  "user remove": ["secretsctl user remove bob"],
  "user token": [
    "secretsctl user token alice       # prints alice's token once; the old one stops working",
  ],
  "user role": ["secretsctl user role alice viewer"],
  team: ["secretsctl team add web-team --group web", "secretsctl team list"],
  "team add": ["secretsctl team add web-team --group web --group web-staging"],
  "team list": ["secretsctl team list", "secretsctl team list --json"],
  "team remove": ["secretsctl team remove web-team"],
  "team members": ["secretsctl team members web-team --add alice --remove bob"],
  oauth: ["secretsctl oauth add gh --preset github --client-id Iv1.0123456789abcdef"],
  "oauth add": [
    "secretsctl oauth add gh --preset github --client-id Iv1.0123456789abcdef --scope vm:web1",
    "secretsctl oauth add corp --preset oidc --issuer https://id.example.com --client-id cli --client-secret",
    "secretsctl oauth add ms --preset microsoft --tenant contoso.onmicrosoft.com --client-id 00000000-0000-0000-0000-000000000000",
  ],
  "oauth list": ["secretsctl oauth list"],
  "oauth login": [
    "secretsctl oauth login gh               # device code: open the URL it prints on any device",
    "secretsctl oauth login gh --browser     # a browser on this host",
  ],
  "oauth refresh": ["secretsctl oauth refresh gh"],
  "oauth logout": ["secretsctl oauth logout gh", "secretsctl oauth logout gh --force"],
  manifest: ["secretsctl manifest plan app.json --vm web1"],
  "manifest plan": [
    "secretsctl manifest plan app.json --vm web1",
    "secretsctl manifest plan app.json --group prod --regenerate session_key",
  ],
  "manifest apply": [
    "secretsctl manifest apply app.json --vm web1",
    "secretsctl manifest apply app.json --group prod",
  ],
  "manifest validate": ["secretsctl manifest validate app.json --vm web1"],
  "manifest template": [
    "secretsctl manifest template app.json > app.env",
    "secretsctl manifest template app.json --format json",
  ],
  "manifest prompt": [
    "secretsctl manifest prompt app",
    "secretsctl manifest prompt app --id api_key",
    "secretsctl manifest prompt app --from app.env",
  ],
  "manifest list": ["secretsctl manifest list"],
  "manifest show": ["secretsctl manifest show app"],
  "manifest remove": [
    "secretsctl manifest remove app",
    "secretsctl manifest remove app --delete-secrets",
  ],
  "manifest status": ["secretsctl manifest status", "secretsctl manifest status app --vm web1"],
  tls: ["secretsctl tls init --san 192.168.122.1", "secretsctl tls show"],
  "tls init": [
    "secretsctl tls init --san 192.168.122.1 --san host.example   # the first SAN is the guests' address",
    "secretsctl tls init --san 192.168.122.1 --force --days 365   # re-issue the server certificate",
  ],
  "tls show": ["secretsctl tls show", "secretsctl tls show --json"],
  rekey: ["secretsctl rekey"],
  audit: [
    "secretsctl audit --limit 20",
    "secretsctl audit --secret openai --action secret.rotate",
    "secretsctl audit --vm web1 --json",
  ],
};

/** The EXAMPLES section of a command's help, or "" when it has none. */
export function examplesSection(path: readonly string[]): string {
  const lines = EXAMPLES[path.join(" ")];
  if (!lines || lines.length === 0) return "";
  return ["EXAMPLES", "", ...lines.map((l) => `  ${l}`)].join("\n");
}
