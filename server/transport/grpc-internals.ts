/**
 * The one read of grpc-js internals on the connection side: the Node HTTP/2 servers a grpc-js
 * `Server` listens with. grpc-js 1.14 keeps them as the keys of its private `http2Servers`
 * map (server.ts). Through them, connections.ts uses Node's public http2 events to:
 * - see the raw request headers, where Node keeps a second `authorization` field that its
 *   header object (and so grpc-js's Metadata) silently drops (issue #8: first-wins);
 * - close TCP connections that never complete the HTTP/2 handshake.
 *
 * grpc-js is pinned to an exact version (package.json) and
 * server/transport/connections.test.ts pins both behaviours over real sockets, so an upgrade
 * that moves this field fails a test. At run time the shape is checked: anything else gives
 * undefined, and the caller logs that the protections are off (idle connections are still
 * closed by grpc-js's own `grpc.max_connection_idle_ms`).
 */
import { Server as NetServer } from "node:net";
import type { Server } from "@grpc/grpc-js";

/** The grpc-js version whose internals this file reads (the exact pin in package.json). */
export const GRPC_JS_VERSION = "1.14.7";

/** The HTTP/2 servers (net.Server subclasses) of a bound grpc-js Server, or undefined. */
export function http2ServersOf(server: Server): NetServer[] | undefined {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(map instanceof Map)) return undefined;
  const servers = [...map.keys()];
  if (servers.length === 0 || !servers.every((s) => s instanceof NetServer)) return undefined;
  return servers as NetServer[];
}
