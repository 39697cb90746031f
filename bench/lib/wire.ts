/**
 * Minimal protobuf wire scans for the bench's watchers: read one number out of a frame
 * without decoding the rest, so that every system pays about the same per frame.
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * The varint at `path` (field numbers: all but the last are embedded messages, the last a
 * varint), or undefined when a field on the path is absent.
 */
export function varintAt(buf: Uint8Array, path: readonly number[]): number | undefined {
  let r = new BinaryReader(buf);
  let depth = 0;
  const last = path.length - 1;
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === path[depth]) {
      if (depth === last && wt === WireType.Varint) return Number(r.uint64());
      if (depth < last && wt === WireType.LengthDelimited) {
        r = new BinaryReader(r.bytes());
        depth++;
        continue;
      }
    }
    r.skip(wt, no);
  }
  return undefined;
}
