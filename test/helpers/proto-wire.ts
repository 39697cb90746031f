/**
 * Protobuf wire bytes written by hand, for requests no generated encoder would produce
 * (out-of-range integers, truncated fields): the transport must refuse them cleanly.
 */

/** A varint of any size, as a protobuf encoder writes it. */
export function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A length-delimited string field (short strings only: one length byte). */
export const str = (field: number, s: string) => [(field << 3) | 2, s.length, ...Buffer.from(s)];

/** A varint field. */
export const uint = (field: number, n: bigint) => [field << 3, ...varint(n)];

/** The fields, concatenated into one message. */
export const wire = (...parts: number[][]) => Buffer.from(parts.flat());
