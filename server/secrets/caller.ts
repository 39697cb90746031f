import type { RoleRecord } from "../store/types.js";

/**
 * Who is calling, as established by the transport from the socket or a bearer token. A
 * bearer token other than a VM's is a user's (issue #13): kind "admin" for every role, so
 * what keys on the token's name (streams ending when it is revoked) holds for all of them;
 * `role` and `teams` say what the user may do (permissions.ts).
 */
export type Caller =
  | { readonly kind: "local" }
  | {
      readonly kind: "admin";
      readonly name: string;
      readonly role: RoleRecord;
      readonly teams: readonly string[];
    }
  | { readonly kind: "vm"; readonly vm: string; readonly tokenId: string }
  | { readonly kind: "anonymous" }
  /** secretsd acting on its own (the OAuth refresh scheduler); never from a connection. */
  | { readonly kind: "system"; readonly name: string };

/**
 * The actor string written to the audit log and shown by status: never a token. A user of
 * role admin stays `admin:<name>` (what every admin token was before users); the others are
 * `user:<name>`, so the log names the user and does not call a viewer an admin.
 */
export function actorOf(caller: Caller): string {
  switch (caller.kind) {
    case "local":
      return "local";
    case "admin":
      return caller.role === "admin" ? `admin:${caller.name}` : `user:${caller.name}`;
    case "vm":
      return `vm:${caller.vm}`;
    case "anonymous":
      return "anonymous";
    case "system":
      return `system:${caller.name}`;
  }
}
