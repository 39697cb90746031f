import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/**
 * `oauth logout NAME [--force]`: revokes the refresh token at the provider (when it offers
 * revocation), then forgets the tokens; VMs lose the access token, the credential stays.
 * Asks first on a terminal.
 */
export default defineClientCommand({
  meta: {
    name: "logout",
    description: "revoke an OAuth credential's tokens at the provider and forget them",
  },
  args: {
    name: { type: "positional", required: true, description: "oauth credential name" },
    force: {
      type: "boolean",
      description: "forget the tokens even when the provider cannot be reached to revoke them",
    },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`log out ${args.name} (VMs lose its access token)?`, args.yes);
    const res = await client.oauth.logoutOAuth(
      { name: args.name, force: args.force === true },
      args.timeout === undefined ? { deadlineMs: 30_000 } : {},
    );
    if (json) {
      printJson({ name: args.name, revoked: res.revoked, revision: res.revision });
      return;
    }
    if (res.revoked) {
      line(`logged out ${args.name} (revoked at the provider)`);
      return;
    }
    // Not revoked: either the provider offers no revocation, or --force went on without it.
    const list = await client.oauth.listOAuth({});
    const c = list.credentials.find((x) => x.name === args.name);
    line(
      c?.revocationSupported
        ? `logged out ${args.name} (not revoked: the provider could not be reached; revoke the grant there)`
        : `logged out ${args.name} (the provider offers no revocation: revoke the grant there)`,
    );
  },
});
