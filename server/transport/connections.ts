/**
 * Connection-level protections of the TCP listener (issue #8), on the Node HTTP/2 server
 * under grpc-js (grpc-internals.ts), with Node's public http2 events only:
 *
 * - Handshake timeout: a TCP connection must complete its handshake (TLS when configured,
 *   then the HTTP/2 preface and the client's SETTINGS frame, Node's 'remoteSettings') within
 *   `handshakeTimeoutMs`, or its socket is destroyed; one that sent some bytes (a busy
 *   server, a slow client, half a preface) within HANDSHAKE_GRACE bounds. grpc-js has no such bound: a socket
 *   that sends nothing, or half a preface, is otherwise kept until the idle timeout (its
 *   `grpc.max_connection_idle_ms`, set by server.ts), and under TLS until Node's 120 s TLS
 *   handshake timeout.
 * - Idle timeout: a session with no open stream for `idleTimeoutMs` is closed (GOAWAY, then
 *   the socket). grpc-js's own `grpc.max_connection_idle_ms` (still set by server.ts, as a
 *   backstop) arms a timer from the event loop's cached time but compares against Date.now();
 *   when the timer fires a millisecond "early" by that clock it re-arms for a whole period,
 *   so a loaded server closed idle connections after twice the bound (measured: 5003 ms for
 *   2500 in CI). Here the check re-arms for what is left, on one monotonic clock.
 * - Duplicate `authorization` fields: Node's header object keeps only the first value of a
 *   single-value header such as authorization, so grpc-js's Metadata sees one token and the
 *   caller's second header is silently dropped. The raw header list still has every field:
 *   when it holds more than one, the header object is given all of them, grpc-js's Metadata
 *   then holds all of them, and authentication refuses the call ("more than one header").
 */
import type { Http2Session, IncomingHttpHeaders } from "node:http2";
import type { Server as NetServer, Socket } from "node:net";
import type { Logger } from "../logger.js";

/** Handshake bound and where to log what it closes. */
export interface ConnectionGuardOptions {
  handshakeTimeoutMs: number;
  /** Close a session that has had no open stream for this long. */
  idleTimeoutMs?: number | undefined;
  log: Logger;
}

/** Counters for tests and status: connections closed for not completing the handshake. */
export interface ConnectionGuard {
  readonly handshakeTimeouts: number;
}

/** Installs the protections on one HTTP/2 server (before it accepts connections). */
export function guardConnections(h2: NetServer, opts: ConnectionGuardOptions): ConnectionGuard {
  const pending = new Map<string, NodeJS.Timeout>();
  const stats = { handshakeTimeouts: 0 };
  const done = (key: string) => {
    const timer = pending.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    pending.delete(key);
  };

  // The raw TCP socket, before any TLS: the bound covers the TLS handshake too.
  h2.on("connection", (socket: Socket) => {
    const key = keyOf(socket);
    const hardDeadline = performance.now() + HANDSHAKE_GRACE * opts.handshakeTimeoutMs;
    const expire = () => {
      // Decide after the next poll phase: under load (thousands of shims reconnecting at
      // once after a restart) a client's preface and SETTINGS can sit unread while the loop
      // serves other calls, and that delay is ours, not the client's.
      setImmediate(() => {
        if (!pending.has(key) || socket.destroyed) return;
        if (socket.bytesRead > 0 && performance.now() < hardDeadline) {
          // It sent something: a busy server, or a slow client; a few more bounds at most.
          pending.set(key, arm());
          return;
        }
        pending.delete(key);
        stats.handshakeTimeouts++;
        // Debug only: a flood of idle sockets must not become a flood of log lines.
        opts.log.debug("connection closed: no HTTP/2 handshake", {
          peer: key,
          ms: opts.handshakeTimeoutMs,
          bytes: socket.bytesRead,
        });
        socket.destroy();
      });
    };
    const arm = () => {
      const timer = setTimeout(expire, opts.handshakeTimeoutMs);
      timer.unref();
      return timer;
    };
    pending.set(key, arm());
    socket.once("close", () => done(key));
  });
  // A session exists once TLS (if any) is done; its peer's first SETTINGS frame ends the
  // HTTP/2 handshake. The session's socket is a proxy (or the TLS socket), not the raw one:
  // both have the same address and port.
  h2.on("session", (session: Http2Session) => {
    const key = keyOf(session.socket);
    session.once("remoteSettings", () => done(key));
    if (opts.idleTimeoutMs !== undefined) closeWhenIdle(session, opts.idleTimeoutMs);
  });
  // Before grpc-js's own listener, which builds the call's Metadata from `headers`.
  h2.prependListener(
    "stream",
    (_stream: unknown, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      const values: string[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        // HTTP/2 field names are lower case on the wire (RFC 9113 §8.2.1).
        if (raw[i] === "authorization") values.push(raw[i + 1] as string);
      }
      if (values.length > 1) (headers as Record<string, unknown>).authorization = values;
    },
  );
  return stats;
}

// --- internal ---

/** Closes `session` once it has had no open stream for `idleMs` (see the file comment). */
function closeWhenIdle(session: Http2Session, idleMs: number): void {
  let open = 0;
  let idleSince = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (open > 0 || session.closed || session.destroyed) return;
    const left = idleMs - (performance.now() - idleSince);
    if (left > 0) {
      arm(left);
      return;
    }
    session.close();
  };
  const arm = (ms: number) => {
    timer = setTimeout(check, ms);
    timer.unref();
  };
  session.on("stream", (stream: { once(event: "close", fn: () => void): void }) => {
    open++;
    stream.once("close", () => {
      open--;
      if (open > 0) return;
      idleSince = performance.now();
      if (timer === undefined) arm(idleMs);
    });
  });
  session.once("close", () => {
    if (timer !== undefined) clearTimeout(timer);
  });
  arm(idleMs);
}

/**
 * A connection that sent bytes but has not finished its handshake gets at most this many
 * bounds in all; one that sent nothing is closed after the first.
 */
const HANDSHAKE_GRACE = 4;

function keyOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }) {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
