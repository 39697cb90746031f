import { describe, expect, it } from "vitest";
import { ShimConfigError } from "./config.js";
import { formatUnitFlag, parseUnitFlag } from "./unit-flag.js";

describe("parseUnitFlag", () => {
  it.each([
    ["app.service", { name: "app.service", keys: ["*"], action: "restart" }],
    ["app", { name: "app.service", keys: ["*"], action: "restart" }],
    [
      "app.service:OPENAI_API_KEY",
      { name: "app.service", keys: ["OPENAI_API_KEY"], action: "restart" },
    ],
    ["app.service:A,B:reload", { name: "app.service", keys: ["A", "B"], action: "reload" }],
    ["app.service:reload", { name: "app.service", keys: ["*"], action: "reload" }],
    ["app.service:*:restart", { name: "app.service", keys: ["*"], action: "restart" }],
    ["getty@tty1.service:X", { name: "getty@tty1.service", keys: ["X"], action: "restart" }],
  ])("%s", (spec, want) => {
    const u = parseUnitFlag(spec);
    expect(u).toEqual(want);
    expect(parseUnitFlag(formatUnitFlag(u))).toEqual(u);
  });

  it("refuses lower-case keys and bad names", () => {
    expect(() => parseUnitFlag("app:lower")).toThrow(/'lower' is neither env var names/);
    expect(() => parseUnitFlag("app:A:B:reload")).toThrow(ShimConfigError);
    expect(() => parseUnitFlag("-app")).toThrow(/name must be a systemd unit name/);
  });
});
