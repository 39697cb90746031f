/**
 * A gRPC call with headers no well-behaved client sends: two `authorization` fields, say.
 * Node's http2 client refuses to send a single-value header twice (ERR_HTTP2_HEADER_SINGLE_VALUE),
 * and so does grpc-js on top of it, but a Go or curl client sends both. So the request goes
 * through Node's http2 client (which decodes the answer for us) over a socket that swaps
 * the first HEADERS frame for one encoded here, by hand: HPACK literals without indexing or
 * Huffman (RFC 7541 §6.2.2), so the server's decoder table stays as the client's encoder
 * expects. One request per connection keeps that true.
 */
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { Duplex } from "node:stream";

/** What the server answered: the gRPC status and every response message, raw. */
export interface RawAnswer {
  code: number;
  message: string;
  messages: Buffer[];
}

/** Where to call, what, and with which headers and bytes. */
export interface RawCallOptions {
  /** host:port, or unix:PATH. */
  target: string;
  /** `/package.Service/Method`. */
  path: string;
  /** Request headers after the pseudo-headers, content-type and te, in order. */
  headers?: [string, string][];
  /** The request message's bytes (framed here), or undefined to send no message. */
  body?: Uint8Array;
  /** For streams: answer once this many messages arrived, cancelling the call. @default Infinity */
  stopAfter?: number;
  /** @default 5000 */
  timeoutMs?: number;
}

/** Makes one call; resolves with its status (never rejects for a gRPC error). */
export function rawCall(opts: RawCallOptions): Promise<RawAnswer> {
  const authority = opts.target.startsWith("unix:") ? "localhost" : opts.target;
  const block = encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", authority],
    [":path", opts.path],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...(opts.headers ?? []),
  ]);
  const socket = opts.target.startsWith("unix:")
    ? connect(opts.target.slice(5))
    : connect(Number(opts.target.split(":").pop()), opts.target.replace(/:\d+$/, ""));
  const session = http2.connect(`http://${authority}`, {
    createConnection: () => new HeaderSwap(socket, block),
  });
  return new Promise((resolve, reject) => {
    const messages: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let settled = false;
    const finish = (a: RawAnswer | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if (a instanceof Error) reject(a);
      else resolve(a);
    };
    const timer = setTimeout(
      () => finish(new Error(`rawCall ${opts.path}: no answer`)),
      opts.timeoutMs ?? 5000,
    );
    session.on("error", (err) => finish(err));
    const req = session.request({
      ":method": "POST",
      ":path": opts.path,
      "content-type": "application/grpc",
    });
    const statusOf = (h: http2.IncomingHttpHeaders) => {
      const code = h["grpc-status"];
      if (code === undefined) return false;
      finish({
        code: Number(code),
        message: decodeURIComponent(String(h["grpc-message"] ?? "")),
        messages,
      });
      return true;
    };
    req.on("response", (h) => statusOf(h));
    req.on("trailers", (h) => statusOf(h));
    req.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const len = pending.readUInt32BE(1);
        messages.push(pending.subarray(5, 5 + len));
        pending = pending.subarray(5 + len);
      }
      if (messages.length >= (opts.stopAfter ?? Number.POSITIVE_INFINITY)) {
        finish({ code: 0, message: "stopped after the first messages", messages });
      }
    });
    req.on("error", (err) => finish(err));
    req.on("close", () =>
      finish(new Error(`rawCall ${opts.path}: stream closed without a status`)),
    );
    if (opts.body) {
      const frame = Buffer.alloc(5 + opts.body.byteLength);
      frame.writeUInt32BE(opts.body.byteLength, 1);
      frame.set(opts.body, 5);
      req.end(frame);
    } else {
      req.end();
    }
  });
}

/** A header block of literal fields without indexing, no Huffman (RFC 7541 §6.2.2). */
function encodeHeaderBlock(headers: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

// --- internal ---

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, "latin1");
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); the H bit stays 0. */
function hpackInt(n: number, prefix: number): Buffer {
  const max = (1 << prefix) - 1;
  if (n < max) return Buffer.from([n]);
  const out = [max];
  let rest = n - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

const PREFACE_LENGTH = 24;
const HEADERS = 0x1;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

/**
 * The client's socket: bytes pass unchanged both ways, except the first HEADERS frame,
 * whose header block is replaced by `block` (its END_STREAM flag kept; padding and priority
 * dropped with the block they belonged to).
 */
class HeaderSwap extends Duplex {
  private out = Buffer.alloc(0);
  private prefaceSeen = false;
  private swapped = false;

  constructor(
    private readonly socket: Socket,
    private readonly block: Buffer,
  ) {
    super();
    socket.on("data", (d: Buffer) => {
      if (!this.push(d)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  override _read() {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
    if (this.swapped) {
      this.socket.write(chunk, cb);
      return;
    }
    this.out = Buffer.concat([this.out, chunk]);
    const send: Buffer[] = [];
    if (!this.prefaceSeen && this.out.length >= PREFACE_LENGTH) {
      send.push(this.out.subarray(0, PREFACE_LENGTH));
      this.out = this.out.subarray(PREFACE_LENGTH);
      this.prefaceSeen = true;
    }
    while (this.prefaceSeen && !this.swapped && this.out.length >= 9) {
      const len = this.out.readUIntBE(0, 3);
      if (this.out.length < 9 + len) break;
      const frame = this.out.subarray(0, 9 + len);
      this.out = this.out.subarray(9 + len);
      if (frame[3] !== HEADERS) {
        send.push(frame);
        continue;
      }
      const flags = (frame[4] ?? 0) & END_STREAM;
      const head = Buffer.alloc(9);
      head.writeUIntBE(this.block.length, 0, 3);
      head[3] = HEADERS;
      head[4] = flags | END_HEADERS;
      frame.copy(head, 5, 5, 9);
      send.push(head, this.block);
      this.swapped = true;
    }
    if (this.swapped && this.out.length > 0) {
      send.push(this.out);
      this.out = Buffer.alloc(0);
    }
    if (send.length === 0) cb();
    else this.socket.write(Buffer.concat(send), cb);
  }

  override _final(cb: (err?: Error | null) => void) {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void) {
    this.socket.destroy();
    cb(err);
  }
}
