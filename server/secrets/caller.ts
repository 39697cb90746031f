/** Who is calling, as established by the transport from the socket or a bearer token. */
export type Caller =
  | { readonly kind: "local" }
  | { readonly kind: "admin"; readonly name: string }
  | { readonly kind: "vm"; readonly vm: string; readonly tokenId: string }
  | { readonly kind: "anonymous" }
  /** secretsd acting on its own (the OAuth refresh scheduler); never from a connection. */
  | { readonly kind: "system"; readonly name: string };

/** The actor string written to the audit log and shown by status: never a token. */
export function actorOf(caller: Caller): string {
  switch (caller.kind) {
    case "local":
      return "local";
    case "admin":
      return `admin:${caller.name}`;
    case "vm":
      return `vm:${caller.vm}`;
    case "anonymous":
      return "anonymous";
    case "system":
      return `system:${caller.name}`;
  }
}
