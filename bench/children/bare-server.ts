/**
 * The bare grpc-js baseline server: no auth, no store, no crypto, no audit; byte buffers in
 * and out (identity (de)serialisers). Same server options as secretsd's TCP listener.
 *   /bench.Bare/Echo       unary: replies with the bytes of --payload-file (the size of a
 *                          GetEnv response; in fact its very bytes)
 *   /bench.Bare/Subscribe  server streaming, request = u32 index (the VM's, in the bench):
 *                          one 8-byte hello, then every published frame
 *   /bench.Bare/Publish    unary, request = u32 seq, u32 size: writes ONE buffer of `size`
 *                          bytes (seq in its first 8) to every open Subscribe stream, in
 *                          index order, then replies (serialise once, write the same bytes
 *                          to all: DESIGN.md)
 * Prints {"event":"listening","tcp":"127.0.0.1:PORT"} on stdout.
 * Usage: bare-server.mjs [--payload-file FILE] [--spin-us N]
 *   --spin-us  burn N µs of CPU in every Echo (calibration: a bare server costing what
 *              secretsd costs per call)
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type {
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { Server, ServerCredentials } from "@grpc/grpc-js";

const { values } = parseArgs({
  options: { "payload-file": { type: "string" }, "spin-us": { type: "string" } },
});
const payload = values["payload-file"] ? readFileSync(values["payload-file"]) : Buffer.alloc(0);
const spinNs = BigInt(Math.round(Number(values["spin-us"] ?? 0) * 1000));

const id = (b: Buffer) => b;
const method = (name: string, responseStream: boolean) => ({
  path: `/bench.Bare/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
  originalName: name,
});

// Streams by the index their Subscribe request carries (the VM's index in the bench), so
// Publish writes them in the order secretsd writes its VMs' streams (by VM), not in the order
// they happened to connect: which watcher process the next frame goes to changes how often
// those processes sleep and wake, and with it the whole fan-out (see BENCHMARKS.md).
const streams: (ServerWritableStream<Buffer, Buffer> | undefined)[] = [];

const impl: UntypedServiceImplementation = {
  echo(_call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) {
    if (spinNs > 0n) {
      const until = process.hrtime.bigint() + spinNs;
      while (process.hrtime.bigint() < until) {
        // burn CPU
      }
    }
    cb(null, payload);
  },
  subscribe(call: ServerWritableStream<Buffer, Buffer>) {
    const index = call.request.length >= 4 ? call.request.readUInt32BE(0) : streams.length;
    streams[index] = call;
    const drop = () => {
      if (streams[index] === call) streams[index] = undefined;
    };
    call.on("cancelled", drop);
    call.on("error", drop);
    call.on("close", drop);
    call.write(Buffer.alloc(8));
  },
  publish(call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) {
    const seq = call.request.readUInt32BE(0);
    const size = Math.max(8, call.request.readUInt32BE(4));
    const frame = Buffer.alloc(size, 0x61);
    frame.writeBigUInt64BE(BigInt(seq), 0);
    for (const s of streams) s?.write(frame);
    cb(null, Buffer.alloc(0));
  },
};

const server = new Server({ "grpc.max_receive_message_length": 1024 * 1024 });
server.addService(
  {
    echo: method("Echo", false),
    subscribe: method("Subscribe", true),
    publish: method("Publish", false),
  },
  impl,
);
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`bare-server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ event: "listening", tcp: `127.0.0.1:${port}` })}\n`);
});

const stop = () => {
  for (const s of streams) s?.end();
  server.forceShutdown();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
