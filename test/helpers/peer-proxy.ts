/**
 * A TCP relay that makes a client look like another host: every connection to it is relayed
 * to `target` from `localAddress` (e.g. 127.0.0.2: Linux routes all of 127/8 to loopback), so
 * per-peer rules in secretsd (the failed-auth throttle) can be tested with two peers on one
 * machine.
 */
import { connect, createServer, type Socket } from "node:net";

/** A running relay. */
export interface PeerProxy {
  /** host:port to connect to instead of the target. */
  address: string;
  close(): Promise<void>;
}

/** Starts the relay on 127.0.0.1:0. */
export async function startPeerProxy(target: string, localAddress: string): Promise<PeerProxy> {
  const port = Number(target.split(":").pop());
  const host = target.replace(/:\d+$/, "");
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ port, host, localAddress });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("proxy did not bind");
  return {
    address: `127.0.0.1:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
