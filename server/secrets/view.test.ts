import { describe, expect, test } from "vitest";
import type { SecretRecord, StoreData } from "../store/types.js";
import { emptyStore } from "../store/types.js";
import { computeView } from "./view.js";

const secret = (name: string, env: string, scope: string): SecretRecord => ({
  name,
  env,
  scope,
  kind: "static",
  provider: "",
  description: "",
  labels: {},
  currentVersion: 1,
  versions: [],
  createdAt: "t",
  updatedAt: "t",
  modRevision: 1,
});

describe("computeView", () => {
  const data: StoreData = emptyStore();
  data.vms.a = { name: "a", groups: ["g1", "g2"], tokens: [], createdAt: "t", modRevision: 1 };
  data.vms.b = { name: "b", groups: [], tokens: [], createdAt: "t", modRevision: 1 };
  for (const s of [
    secret("k-global", "K", "global"),
    secret("k-g2", "K", "group:g2"),
    secret("k-g1", "K", "group:g1"),
    secret("k-vm-a", "K", "vm:a"),
    secret("l-global", "L", "global"),
    secret("l-g2", "L", "group:g2"),
    secret("m-vm-b", "M", "vm:b"),
  ]) {
    data.secrets[s.name] = s;
  }

  test("vm beats group beats global; groups tie by name; sorted by env", () => {
    expect(computeView(data, "a").map((e) => [e.env, e.secret.name])).toEqual([
      ["K", "k-vm-a"],
      ["L", "l-g2"],
    ]);
    expect(computeView(data, "b").map((e) => [e.env, e.secret.name])).toEqual([
      ["K", "k-global"],
      ["L", "l-global"],
      ["M", "m-vm-b"],
    ]);
    delete data.secrets["k-vm-a"];
    expect(computeView(data, "a")[0]?.secret.name).toBe("k-g1");
    expect(computeView(data, "nope")).toEqual([]);
  });
});
