/**
 * Hand-written encoders/decoders for the few etcd v3 (3.4) gRPC messages the bench uses, so
 * that no etcd client package is needed. Field numbers from etcd's
 * etcdserver/etcdserverpb/rpc.proto and mvcc/mvccpb/kv.proto.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { varintAt } from "./wire.js";

export const PUT_PATH = "/etcdserverpb.KV/Put";
export const WATCH_PATH = "/etcdserverpb.Watch/Watch";

/** PutRequest { bytes key = 1; bytes value = 2; } */
export function encodePut(key: Uint8Array, value: Uint8Array): Buffer {
  const w = new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .bytes(key)
    .tag(2, WireType.LengthDelimited)
    .bytes(value);
  return Buffer.from(w.finish());
}

/** PutResponse { ResponseHeader header = 1; } → header.revision (ResponseHeader field 3). */
export function decodePutRevision(buf: Uint8Array): number {
  return varintAt(buf, [1, 3]) ?? 0;
}

/** WatchRequest { oneof { WatchCreateRequest create_request = 1; } } with create_request.key = 1. */
export function encodeWatchCreate(key: Uint8Array): Buffer {
  const w = new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .fork()
    .tag(1, WireType.LengthDelimited)
    .bytes(key)
    .join();
  return Buffer.from(w.finish());
}

export interface WatchEvent {
  created: boolean;
  canceled: boolean;
  /** The highest kv.mod_revision among the events, 0 when none. */
  modRevision: number;
}

/**
 * WatchResponse { header = 1; int64 watch_id = 2; bool created = 3; bool canceled = 4;
 * repeated mvccpb.Event events = 11; }, Event { kv = 2 }, KeyValue { int64 mod_revision = 3 }.
 */
export function decodeWatchResponse(buf: Uint8Array): WatchEvent {
  const out: WatchEvent = { created: false, canceled: false, modRevision: 0 };
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 3 && wt === WireType.Varint) out.created = r.bool();
    else if (no === 4 && wt === WireType.Varint) out.canceled = r.bool();
    else if (no === 11 && wt === WireType.LengthDelimited) {
      const rev = varintAt(r.bytes(), [2, 3]) ?? 0;
      if (rev > out.modRevision) out.modRevision = rev;
    } else r.skip(wt, no);
  }
  return out;
}
