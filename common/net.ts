/**
 * Which hosts are this machine's loopback: the one rule behind "plaintext only on loopback"
 * in secretsd's listener, `secretsd install`, the shim, and `secretsctl vm add --bundle`.
 * A leaf module (imports nothing of ours). Loopback is `localhost`, `::1` and 127.0.0.0/8
 * written as a dotted quad; a DNS name that merely starts with `127.` (127.example.net) is not.
 */
import { isIPv4 } from "node:net";

/** True when `host` (no port; IPv6 with or without brackets) is a loopback address. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return h === "localhost" || h === "::1" || (isIPv4(h) && h.startsWith("127."));
}
