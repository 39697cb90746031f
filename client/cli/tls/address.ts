/**
 * Host names and addresses as `tls init --san` and `vm add --server-address` take them:
 * IPv4, IPv6 (bare, or bracketed before a port) and DNS names, checked before anything is
 * written so that a typo never ends up in a certificate or a guest's bundle.
 */
import { isIPv4, isIPv6 } from "node:net";
import { isLoopbackHost } from "../../../common/net.js";

/** One subjectAltName entry, as openssl and `tls show` spell it (`IP:…`, `DNS:…`). */
export interface San {
  type: "IP" | "DNS";
  value: string;
}

/**
 * Reads a host given alone (`192.168.122.1`, `fd00::1`, `[fd00::1]`, `host.example`).
 * Returns undefined when it is none of these: a malformed address (`999.1.1.1`, `1.2.3`) is
 * not taken for a name.
 */
export function parseHost(raw: string): San | undefined {
  const bare = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  if (isIPv4(bare)) return { type: "IP", value: bare };
  if (isIPv6(bare)) return { type: "IP", value: bare.toLowerCase() };
  if (bare !== raw || !isDnsName(raw)) return undefined;
  return { type: "DNS", value: raw.toLowerCase() };
}

/**
 * Reads `HOST:PORT` (IPv6 as `[addr]:port`); undefined when malformed or the port is not
 * 1–65535.
 */
export function parseHostPort(raw: string): { host: San; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(raw);
  if (!m) return undefined;
  const host = parseHost(m[1] as string);
  const port = Number(m[2]);
  if (!host || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** `HOST:PORT`, with an IPv6 address in brackets. */
export function formatHostPort(host: San, port: number): string {
  return host.type === "IP" && host.value.includes(":")
    ? `[${host.value}]:${port}`
    : `${host.value}:${port}`;
}

/** Whether a host is this machine's loopback (the one rule: common/net.ts). */
export function isLoopback(host: San): boolean {
  return isLoopbackHost(host.value);
}

// --- internal ---

/**
 * RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, each at
 * most 63 characters, 253 in all. A name whose last label is all digits would be read as a
 * (malformed) IPv4 address by resolvers, so it is refused.
 */
function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split(".");
  if (!labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) return false;
  return !/^[0-9]+$/.test(labels.at(-1) as string);
}
