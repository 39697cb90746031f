/**
 * Failed authentication over TCP, per peer (issue #8): throttled, and reported in bounded
 * volume.
 *
 * Throttle: each peer has a bucket of `limit` failures that refills at `limit` per `windowMs`.
 * A failure takes one; while the bucket is empty the peer's calls are refused at once, before
 * any token is hashed or looked up, and the refusal says when to retry. Other peers and the
 * unix socket never wait: a check is one map lookup. A good token from a throttled peer is
 * refused too (nothing can tell it from a guess without the hash work being avoided); a
 * bucket refills one failure every windowMs/limit, so the wait is short.
 *
 * Reports: the first failure of a peer is reported on its own (request id, method, reason);
 * after it, each interval of `windowMs` gives at most one summary per peer ("N more from
 * 10.0.0.5, M of them throttled"). At most `maxNamedPeers` peers are named per interval; the
 * failures of any others go into one line for all of them. So an interval reports at most
 * 2 × maxNamedPeers + 1 lines, however many calls fail and from however many addresses.
 *
 * Peers are keyed by IP address (IPv4-mapped IPv6 as IPv4) and IPv6 by its /64, which one
 * host usually holds whole.
 */
import { isIPv6 } from "node:net";

/** Settings of the throttle and its reports (from the daemon config). */
export interface AuthFailureOptions {
  /** Failures a peer may have in a burst before it is throttled. */
  limit: number;
  /** The time a bucket takes to refill from empty, and the reporting interval. */
  windowMs: number;
  /** Peers tracked at once; the oldest entry is dropped beyond it. @default 10000 */
  maxPeers?: number;
  /** Peers named in reports per interval. @default 100 */
  maxNamedPeers?: number;
  /** @default Date.now */
  now?: () => number;
}

/** One report: a first failure, a peer's summary, or the summary of unnamed peers. */
export type AuthFailureReport =
  | {
      kind: "first";
      peer: string;
      requestId: string;
      method: string;
      reason: string;
    }
  | { kind: "summary"; peer: string; count: number; throttled: number; sinceMs: number }
  | { kind: "others"; peers: number; count: number; throttled: number; sinceMs: number };

/** Per-listener state of failed authentications; see the module comment. */
export interface AuthFailures {
  /** The peer key (address or /64) of a grpc-js peer string `ip:port`. */
  peerOf(grpcPeer: string): string;
  /** Milliseconds until `peer` may try again, or 0 when it may now. */
  throttled(peer: string): number;
  /** Records a failed authentication: it takes one from the peer's bucket. */
  failed(peer: string, info: { requestId: string; method: string; reason: string }): void;
  /** Counts a call refused by the throttle (nothing else to record about it). */
  refusedWhileThrottled(peer: string): void;
  /** Reports what was counted since the last flush (the interval timer calls it too). */
  flush(): void;
  /** Flushes and stops the interval timer. */
  close(): void;
}

/** Creates the per-peer throttle and its reporter; `report` gets each line to write. */
export function createAuthFailures(
  opts: AuthFailureOptions,
  report: (r: AuthFailureReport) => void,
): AuthFailures {
  const now = opts.now ?? Date.now;
  const maxPeers = opts.maxPeers ?? 10_000;
  const maxNamed = opts.maxNamedPeers ?? 100;
  const refillPerMs = opts.limit / opts.windowMs;
  const peers = new Map<string, PeerState>();
  let namedThisInterval = 0;
  let intervalStart = now();
  const others = { peers: new Set<string>(), count: 0, throttled: 0 };

  const stateOf = (peer: string): PeerState => {
    let s = peers.get(peer);
    if (s) return s;
    if (peers.size >= maxPeers) {
      // Map order is insertion order: the first key is the oldest peer.
      const oldest = peers.keys().next().value;
      if (oldest !== undefined) peers.delete(oldest);
    }
    s = { tokens: opts.limit, at: now(), named: false, count: 0, throttled: 0, since: now() };
    peers.set(peer, s);
    return s;
  };
  const refill = (s: PeerState) => {
    const t = now();
    s.tokens = Math.min(opts.limit, s.tokens + (t - s.at) * refillPerMs);
    s.at = t;
  };
  const count = (peer: string, s: PeerState, throttled: boolean) => {
    if (s.named) {
      if (s.count === 0) s.since = now();
      s.count++;
      if (throttled) s.throttled++;
    } else {
      if (others.count === 0) intervalStart = now();
      others.peers.add(peer);
      others.count++;
      if (throttled) others.throttled++;
    }
  };

  const flush = () => {
    const t = now();
    for (const [peer, s] of peers) {
      if (s.count > 0) {
        report({
          kind: "summary",
          peer,
          count: s.count,
          throttled: s.throttled,
          sinceMs: t - s.since,
        });
        s.count = 0;
        s.throttled = 0;
      }
      refill(s);
      // A peer whose bucket is full again has nothing left to remember.
      if (s.tokens >= opts.limit) peers.delete(peer);
    }
    if (others.count > 0) {
      report({
        kind: "others",
        peers: others.peers.size,
        count: others.count,
        throttled: others.throttled,
        sinceMs: t - intervalStart,
      });
      others.peers.clear();
      others.count = 0;
      others.throttled = 0;
    }
    namedThisInterval = 0;
  };
  const timer = setInterval(flush, opts.windowMs);
  timer.unref();

  return {
    peerOf,
    throttled(peer) {
      const s = peers.get(peer);
      if (!s) return 0;
      refill(s);
      // The epsilon keeps float noise (0.005/0.005 = 1.0000000000000009) from adding 1 ms.
      return s.tokens >= 1 ? 0 : Math.ceil((1 - s.tokens) / refillPerMs - 1e-9);
    },
    failed(peer, info) {
      const s = stateOf(peer);
      refill(s);
      s.tokens = Math.max(0, s.tokens - 1);
      if (!s.named && namedThisInterval < maxNamed) {
        s.named = true;
        namedThisInterval++;
        report({ kind: "first", peer, ...info });
        return;
      }
      count(peer, s, false);
    },
    refusedWhileThrottled(peer) {
      count(peer, stateOf(peer), true);
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}

// --- internal ---

interface PeerState {
  /** Failures left in the bucket (fractional while it refills). */
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  /** Reported on its own once: later failures only go into summaries. */
  named: boolean;
  /** Failures since the last summary, and how many of them the throttle refused. */
  count: number;
  throttled: number;
  since: number;
}

/**
 * grpc-js gives `ip:port` (IPv6 unbracketed, `::1:5000`) or, for other transports, whatever
 * it has. The port is dropped; IPv4-mapped IPv6 becomes IPv4; IPv6 is cut to its /64.
 */
function peerOf(grpcPeer: string): string {
  const cut = grpcPeer.lastIndexOf(":");
  let ip = cut > 0 && /^\d+$/.test(grpcPeer.slice(cut + 1)) ? grpcPeer.slice(0, cut) : grpcPeer;
  if (ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(ip)) return ip;
  return `${expandIPv6(ip).slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, in lower-case hex without leading zeros. */
function expandIPv6(ip: string): string[] {
  const [head = "", tail] = ip.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  // An embedded IPv4 tail (::a.b.c.d) counts as two groups.
  const last = right.length > 0 ? right : left;
  const v4 = last[last.length - 1];
  if (v4?.includes(".")) {
    const [a = 0, b = 0, c = 0, d = 0] = v4.split(".").map(Number);
    last.splice(last.length - 1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const zeros = Array(Math.max(0, 8 - left.length - right.length)).fill("0");
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((g) =>
    Number.parseInt(g, 16).toString(16),
  );
}
