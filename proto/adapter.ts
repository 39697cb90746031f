/**
 * The bridge between protobuf-es generated service descriptors and @grpc/grpc-js, shared by
 * secretsd (server/transport) and every client (client/, shim/). grpc-js has no protobuf-es
 * plugin, so the service definition is derived from the descriptor: path
 * `/${service.typeName}/${method.name}`, (de)serialisers from toBinary/fromBinary, and the
 * streaming flags from `method.methodKind`.
 */
import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/**
 * Bytes already serialised with `encodeMessage`. A server writing the same message to many
 * streams serialises it once and writes these bytes to each (DESIGN.md: per-stream toBinary
 * doubles the server's loop).
 */
export class Encoded {
  private frame: Buffer | undefined;
  constructor(readonly bytes: Buffer) {}

  /**
   * The message as one gRPC length-prefixed frame (flag 0 = uncompressed, 4-byte big-endian
   * length, the bytes): built once, then written as is to every HTTP/2 stream that gets it.
   */
  get framed(): Buffer {
    if (this.frame === undefined) {
      const f = Buffer.allocUnsafe(this.bytes.byteLength + 5);
      f.writeUInt8(0, 0);
      f.writeUInt32BE(this.bytes.byteLength, 1);
      this.bytes.copy(f, 5);
      this.frame = f;
    }
    return this.frame;
  }
}

/** Serialise once, for writing the same message to many streams. */
export function encodeMessage<D extends DescMessage>(schema: D, msg: MessageShape<D>): Encoded {
  const bin = toBinary(schema, msg);
  return new Encoded(Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength));
}

/** The grpc-js method path of a method: `/pkg.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Builds the grpc-js ServiceDefinition of a generated service, keyed by method localName. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    def[method.localName] = methodDefinition(method);
  }
  return def as ServiceDefinition;
}

/** Builds the grpc-js MethodDefinition of one method. */
export function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  const { input, output } = method;
  return {
    path: methodPath(method),
    requestStream:
      method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream:
      method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (value: unknown) => serialize(input, value),
    requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
    responseSerialize: (value: unknown) => serialize(output, value),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    originalName: method.localName,
  };
}

// --- internal ---

function serialize(schema: DescMessage, value: unknown): Buffer {
  if (value instanceof Encoded) return value.bytes;
  const bin = toBinary(schema, value as MessageShape<DescMessage>);
  return Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength);
}
