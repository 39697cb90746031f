import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { expiryCell } from "./expires.js";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const at = (deltaMs: number) => timestampFromMs(NOW + deltaMs);
const S = 1000;
const H = 3_600_000;
const D = 86_400_000;

describe("expiryCell", () => {
  it("says the nearest whole unit: +30d listed seconds later is still 'in 30d'", () => {
    expect(expiryCell(at(30 * D - 1.5 * S), NOW)).toBe("in 30d");
    expect(expiryCell(at(30 * D - 2 * H), NOW)).toBe("in 30d");
    expect(expiryCell(at(7 * D - 40 * S), NOW)).toBe("in 7d");
    expect(expiryCell(at(6 * D + 13 * H), NOW)).toBe("in 7d");
    expect(expiryCell(at(6 * D + 11 * H), NOW)).toBe("in 6d");
    expect(expiryCell(at(3 * H - 20 * S), NOW)).toBe("in 3h");
    expect(expiryCell(at(45 * S), NOW)).toBe("in 45s");
  });
  it("past: EXPIRED … ago; none: empty", () => {
    expect(expiryCell(at(-2 * H + 5 * S), NOW)).toBe("EXPIRED 2h ago");
    expect(expiryCell(at(-3 * D), NOW)).toBe("EXPIRED 3d ago");
    expect(expiryCell(at(0), NOW)).toBe("EXPIRED 0s ago");
    expect(expiryCell(undefined, NOW)).toBe("");
  });
});
