/**
 * Manifests and secret classes end to end (issue #11), over real gRPC against a real
 * secretsd (in-process): plan → apply → validate with every class and generator, values that
 * survive a restart and are never regenerated, remote_fetch from a real command and a real
 * file (a change reaches a watching VM; a failing command keeps the last value), bad
 * manifests refused whole with the field path, infrastructure entries kept off every VM, a
 * rotation schedule fired by a fake clock, and readiness (vm list, the snapshot's `missing`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EntryAction, EntryState } from "../proto/gen/vmauth/v1/manifest_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue, track } from "./helpers/values.js";
import { openWatch } from "./helpers/watch.js";

/** A clock the test moves: what rotation schedules read. */
class FakeClock {
  t = Date.parse("2026-12-01T02:59:00Z");
  private timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers.delete(h as number);
  };
  /** Moves time forward, firing what falls due, in order. */
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

const clock = new FakeClock();
let d: TestDaemon;
// Fetched values live outside the suite root only as files the test writes; they are tracked.
const work = mkdtempSync(join(tmpdir(), "vm-auth-manifest-"));
const fetchedFile = join(work, "db-password");
const fileValue = secretValue("file");

beforeAll(async () => {
  d = await startDaemon({ heartbeatMs: 300, daemon: { clock } });
  await d.client.access.createGroup({ name: "web" });
  for (const vm of ["w1", "w2"]) await d.client.access.createVm({ name: vm, groups: ["web"] });
  writeFileSync(fetchedFile, `${fileValue}\n`, { mode: 0o600 });
  writeFileSync(cmdFile, cmdValue, { mode: 0o600 });
});

afterAll(async () => {
  await d?.dispose();
  rmSync(work, { recursive: true, force: true });
});

// A command prints the value (as `vault kv get` would); its argv is configuration, never a secret.
const cmdValue = secretValue("cmd");
const cmdFile = join(work, "cmd-output");

function manifest(extra: object[] = []) {
  return JSON.stringify({
    name: "web",
    description: "what a web VM needs",
    entries: [
      {
        id: "session",
        class: "per_install_generated",
        env: "SESSION_KEY",
        generator: { type: "random", length: 32, charset: "alnum" },
      },
      {
        id: "hexkey",
        class: "per_install_generated",
        env: "HEX_KEY",
        generator: { type: "random", length: 40, charset: "hex" },
      },
      {
        id: "b64",
        class: "per_install_generated",
        env: "B64_KEY",
        generator: { type: "random", length: 24, charset: "base64" },
      },
      {
        id: "b64url",
        class: "per_install_generated",
        env: "B64URL_KEY",
        generator: { type: "random", length: 24, charset: "base64url" },
      },
      {
        id: "instance",
        class: "per_install_generated",
        env: "INSTANCE_ID",
        generator: { type: "uuid" },
      },
      {
        id: "openai",
        class: "user_prompt",
        env: "OPENAI_API_KEY",
        label: "OpenAI key",
        format: "sk-[A-Za-z0-9-]{8,}",
      },
      {
        id: "fromcmd",
        class: "remote_fetch",
        env: "CMD_SECRET",
        fetch: { command: ["/bin/cat", cmdFile], intervalMs: 60_000 },
      },
      {
        id: "fromfile",
        class: "remote_fetch",
        env: "DB_PASSWORD",
        fetch: { file: fetchedFile, intervalMs: 60_000 },
      },
      {
        id: "signing",
        class: "infrastructure",
        description: "host-only",
        generator: { type: "random", length: 48, charset: "base64url" },
      },
      ...extra,
    ],
  });
}

const CHARSETS: Record<string, RegExp> = {
  SESSION_KEY: /^[A-Za-z0-9]{32}$/,
  HEX_KEY: /^[0-9a-f]{40}$/,
  B64_KEY: /^[A-Za-z0-9+/]{24}$/,
  B64URL_KEY: /^[A-Za-z0-9_-]{24}$/,
  INSTANCE_ID: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
};

async function env(vm: string) {
  const r = await d.client.env.getEnv({ vm });
  const vars = Object.fromEntries((r.snapshot?.vars ?? []).map((v) => [v.name, v.value]));
  for (const v of Object.values(vars)) track(v);
  return { vars, missing: r.snapshot?.missing ?? [] };
}

describe("plan → apply → validate", () => {
  test("plan changes nothing; apply generates per VM, fetches, records; a second apply regenerates nothing", async () => {
    const bind = { target: { case: "group" as const, value: "web" } };
    const before = (await d.client.secrets.listSecrets({})).revision;
    const plan = await d.client.manifests.planManifest({ manifest: manifest(), bind });
    expect((await d.client.secrets.listSecrets({})).revision).toBe(before);
    const byId = (id: string) => plan.entries.filter((e) => e.id === id);
    expect(byId("session").map((e) => [e.secret, e.action])).toEqual([
      ["web.session.w1", EntryAction.GENERATE],
      ["web.session.w2", EntryAction.GENERATE],
    ]);
    expect(byId("openai")[0]).toMatchObject({
      action: EntryAction.PROVIDE,
      state: EntryState.MISSING,
      scope: "group:web",
    });
    expect(byId("fromcmd")[0]?.action).toBe(EntryAction.FETCH);
    expect(byId("signing")[0]).toMatchObject({ scope: "host", action: EntryAction.GENERATE });
    const w1 = plan.vms.find((v) => v.vm === "w1");
    expect(w1?.missing).toEqual(["openai"]);
    expect(w1?.env).toContain("SESSION_KEY");
    expect(w1?.env).not.toContain("OPENAI_API_KEY");

    const applied = await d.client.manifests.applyManifest({ manifest: manifest(), bind });
    expect(applied.entries.every((e) => e.error === "")).toBe(true);
    const e1 = await env("w1");
    const e2 = await env("w2");
    for (const [name, re] of Object.entries(CHARSETS)) {
      expect(e1.vars[name], name).toMatch(re);
      expect(e2.vars[name], name).toMatch(re);
      expect(e1.vars[name], `${name} differs across VMs`).not.toBe(e2.vars[name]);
    }
    expect(e1.vars.CMD_SECRET).toBe(cmdValue);
    expect(e1.vars.DB_PASSWORD).toBe(fileValue);
    expect(e1.vars.OPENAI_API_KEY).toBeUndefined();
    expect(e1.missing).toEqual(["web/openai OPENAI_API_KEY"]);
    // The infrastructure entry is on the host only.
    expect(Object.keys(e1.vars).some((k) => /SIGNING/.test(k))).toBe(false);
    const signing = await d.client.secrets.getSecretValue({ name: "web.signing" });
    track(signing.value);
    expect(signing.secret?.scope).toBe("host");
    expect(JSON.stringify(e1)).not.toContain(signing.value);
    const vms = await d.client.access.listVms({});
    expect(vms.vms.find((v) => v.name === "w1")?.missingRequired).toEqual(["web/openai"]);

    // A second apply keeps every value; --regenerate replaces only what it names.
    await d.client.manifests.applyManifest({ manifest: manifest(), bind });
    expect((await env("w1")).vars).toEqual(e1.vars);
    await d.client.manifests.applyManifest({ manifest: manifest(), bind, regenerate: ["session"] });
    const e1b = await env("w1");
    expect(e1b.vars.SESSION_KEY).not.toBe(e1.vars.SESSION_KEY);
    expect(e1b.vars.INSTANCE_ID).toBe(e1.vars.INSTANCE_ID);

    // Values survive a restart, and so does the manifest.
    await d.restart();
    expect((await env("w1")).vars).toEqual(e1b.vars);
    const status = await d.client.manifests.manifestStatus({ name: "web", vm: "w1" });
    const row = (id: string) => status.entries.find((e) => e.id === id);
    expect(row("session")).toMatchObject({ state: EntryState.CONFIGURED, source: "generated" });
    expect(row("fromfile")).toMatchObject({ state: EntryState.CONFIGURED, source: "fetched" });
    expect(row("openai")).toMatchObject({ state: EntryState.MISSING, source: "" });
    expect(
      JSON.stringify(status, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    ).not.toContain(cmdValue);
  }, 20_000);

  test("a provided value is checked against its format, then completes the VMs", async () => {
    await expect(
      d.client.manifests.provideManifestValue({
        manifest: "web",
        id: "openai",
        value: "not-a-key",
      }),
    ).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^value: does not match/),
    });
    const key = secretValue("sk-live");
    const w = openWatch(d.client, { vm: "w2" });
    await w.until(() => w.snapshots().length > 0);
    await d.client.manifests.provideManifestValue({ manifest: "web", id: "openai", value: key });
    await w.until(() =>
      w.snapshots().some((s) => s && "vars" in s && s.vars.some((v) => v.value === key)),
    );
    // The host-only infrastructure value is in no frame the VM was sent.
    const signing = (await d.client.secrets.getSecretValue({ name: "web.signing" })).value;
    const frames = w.frames.map((f) =>
      JSON.stringify(f, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    );
    expect(frames.join("\n")).not.toContain(signing);
    const last = w.snapshots().at(-1);
    expect(last && "missing" in last ? last.missing : ["?"]).toEqual([]);
    w.cancel();
    expect(
      (await d.client.access.listVms({})).vms.find((v) => v.name === "w2")?.missingRequired,
    ).toEqual([]);
  });
});

describe("a VM that joins a bound group", () => {
  test("gets its own generated values at once, and is incomplete only for what a person must provide", async () => {
    await d.client.access.createVm({ name: "w3", groups: ["web"] });
    let e3 = await env("w3");
    for (let i = 0; i < 50 && !e3.vars.SESSION_KEY; i++) {
      await new Promise((r) => setTimeout(r, 20));
      e3 = await env("w3");
    }
    expect(e3.vars.SESSION_KEY).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(e3.vars.SESSION_KEY).not.toBe((await env("w1")).vars.SESSION_KEY);
    expect(e3.vars.OPENAI_API_KEY).toBeDefined(); // provided once for the group
    expect(e3.missing).toEqual([]);
  });
});

describe("remote_fetch", () => {
  test("a changed file reaches a watching VM; a failing command keeps the last value", async () => {
    const bind = { target: { case: "vm" as const, value: "w1" } };
    const okCmd = secretValue("c1");
    const flip = join(work, "flip");
    writeFileSync(flip, okCmd);
    const text = JSON.stringify({
      name: "fetchy",
      entries: [
        {
          id: "f",
          class: "remote_fetch",
          env: "FLIPPING",
          fetch: { file: flip, intervalMs: 1000, timeoutMs: 500 },
        },
        {
          id: "bad",
          class: "remote_fetch",
          env: "FAILS_LATER",
          fetch: { command: ["/bin/cat", flip], intervalMs: 1000, timeoutMs: 500 },
        },
      ],
    });
    await d.client.manifests.applyManifest({ manifest: text, bind });
    const w = openWatch(d.client, { vm: "w1" });
    const next = secretValue("c2");
    writeFileSync(flip, next);
    await w.until(
      () =>
        w
          .snapshots()
          .some(
            (s) =>
              s && "vars" in s && s.vars.some((v) => v.name === "FLIPPING" && v.value === next),
          ),
      5000,
    );
    // The command now fails (the file is gone): its last value stays, and the error is reported.
    rmSync(flip);
    await new Promise((r) => setTimeout(r, 2500));
    const e = await env("w1");
    expect(e.vars.FAILS_LATER).toBe(next);
    const st = await d.client.manifests.manifestStatus({ name: "fetchy" });
    const bad = st.entries.find((x) => x.id === "bad");
    expect(bad?.error).toMatch(/cat.*exited with code 1/);
    expect(bad?.error).not.toContain(next);
    w.cancel();
  }, 15_000);
});

describe("rotation schedules", () => {
  test("a generated entry with `rotate` is regenerated when its schedule fires (fake clock) and reaches a watching VM", async () => {
    const bind = { target: { case: "vm" as const, value: "w2" } };
    const text = JSON.stringify({
      name: "rot",
      entries: [
        {
          id: "k",
          class: "per_install_generated",
          env: "ROTATING",
          generator: { type: "uuid" },
          rotate: "0 3 * * *",
        },
      ],
    });
    await d.client.manifests.applyManifest({ manifest: text, bind });
    const first = (await env("w2")).vars.ROTATING;
    const w = openWatch(d.client, { vm: "w2" });
    await w.until(() => w.snapshots().length > 0);
    clock.advance(60_000); // 02:59 → 03:00
    await w.until(
      () =>
        w
          .snapshots()
          .some(
            (s) =>
              s && "vars" in s && s.vars.some((v) => v.name === "ROTATING" && v.value !== first),
          ),
      5000,
    );
    w.cancel();
    const versions = await d.client.secrets.listSecretVersions({ name: "rot.k.w2" });
    expect(versions.versions.length).toBe(2);
  });
});

describe("rotation schedules of fetched values", () => {
  test("a fetched entry with `rotate` is fetched again when its schedule fires (fake clock)", async () => {
    const file = join(work, "scheduled");
    const v1 = secretValue("sched1");
    writeFileSync(file, v1, { mode: 0o600 });
    const text = JSON.stringify({
      name: "rotf",
      entries: [
        {
          id: "f",
          class: "remote_fetch",
          env: "SCHEDULED",
          // An interval of a week: only the schedule can fetch it again during the test.
          fetch: { file, intervalMs: 604_800_000 },
          rotate: "0 4 * * *",
        },
      ],
    });
    await d.client.manifests.applyManifest({
      manifest: text,
      bind: { target: { case: "vm", value: "w2" } },
    });
    expect((await env("w2")).vars.SCHEDULED).toBe(v1);
    const v2 = secretValue("sched2");
    writeFileSync(file, v2, { mode: 0o600 });
    const w = openWatch(d.client, { vm: "w2" });
    await w.until(() => w.snapshots().length > 0);
    clock.advance(3_600_000); // 03:00 → 04:00
    await w.until(
      () => w.snapshots().some((s) => s && "vars" in s && s.vars.some((v) => v.value === v2)),
      5000,
    );
    w.cancel();
  });
});

describe("a bad manifest is refused whole, naming the field", () => {
  const bind = { target: { case: "vm" as const, value: "w1" } };
  const e = (x: object) => JSON.stringify({ name: "bad", entries: [x] });
  test.each([
    ["unknown class", e({ id: "a", class: "nope", env: "A" }), /^entries\[0\]\.class:/],
    [
      "unsafe regex",
      e({ id: "a", class: "user_prompt", env: "A", format: "(a+)+" }),
      /^entries\[0\]\.format:/,
    ],
    [
      "duplicate id",
      JSON.stringify({
        name: "bad",
        entries: [
          { id: "a", class: "user_prompt", env: "A" },
          { id: "a", class: "user_prompt", env: "B" },
        ],
      }),
      /^entries\[1\]\.id:/,
    ],
    [
      "duplicate env",
      JSON.stringify({
        name: "bad",
        entries: [
          { id: "a", class: "user_prompt", env: "A" },
          { id: "b", class: "user_prompt", env: "A" },
        ],
      }),
      /^entries\[1\]\.env:/,
    ],
    [
      "generator length",
      e({
        id: "a",
        class: "per_install_generated",
        env: "A",
        generator: { type: "random", length: 4, charset: "hex" },
      }),
      /^entries\[0\]\.generator\.length:/,
    ],
    [
      "infrastructure targeting a VM",
      e({ id: "a", class: "infrastructure", env: "A", generator: { type: "uuid" } }),
      /^entries\[0\]\.env:/,
    ],
    ["not JSON", "name: yaml", /JSON/],
  ])("%s", async (_label, text, message) => {
    const before = (await d.client.secrets.listSecrets({})).revision;
    await expect(d.client.manifests.applyManifest({ manifest: text, bind })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(message),
    });
    expect((await d.client.secrets.listSecrets({})).revision).toBe(before);
  });

  test("every ManifestService call names the field it refuses", async () => {
    const c = d.client.manifests;
    const ok = JSON.stringify({
      name: "x",
      entries: [{ id: "a", class: "user_prompt", env: "A" }],
    });
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [
        () => c.planManifest({ manifest: ok }),
        "invalid_argument",
        /^bind: a VM or a group is required/,
      ],
      [
        () => c.planManifest({ manifest: ok, bind: { target: { case: "vm", value: "nope" } } }),
        "not_found",
        /^bind\.vm:/,
      ],
      [
        () => c.planManifest({ manifest: ok, bind: { target: { case: "group", value: "Bad!" } } }),
        "invalid_argument",
        /^bind\.group:/,
      ],
      [
        () => c.applyManifest({ manifest: ok, bind, regenerate: ["zz"] }),
        "invalid_argument",
        /^regenerate:/,
      ],
      [() => c.getManifest({ name: "nope" }), "not_found", /^name:/],
      [() => c.removeManifest({ name: "" }), "invalid_argument", /^name:/],
      [
        () => c.provideManifestValue({ manifest: "nope", id: "a", value: "v" }),
        "not_found",
        /^manifest:/,
      ],
      [
        () => c.provideManifestValue({ manifest: "web", id: "nope", value: "v" }),
        "not_found",
        /^id:/,
      ],
      [
        () => c.provideManifestValue({ manifest: "web", id: "session", value: "v" }),
        "failed_precondition",
        /^id:/,
      ],
      [
        () => c.provideManifestValue({ manifest: "web", id: "openai", value: "" }),
        "invalid_argument",
        /^value:/,
      ],
    ];
    const before = (await d.client.secrets.listSecrets({})).revision;
    for (const [call, code, message] of cases) {
      const err = await call().then(
        () => new Error("no error"),
        (e: unknown) => e,
      );
      expect(err, String(err)).toMatchObject({ code, message: expect.stringMatching(message) });
    }
    expect((await d.client.secrets.listSecrets({})).revision).toBe(before);
  });

  test("an infrastructure secret cannot be moved into a VM's view", async () => {
    await expect(
      d.client.secrets.updateSecret({ name: "web.signing", scope: "vm:w1" }),
    ).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringMatching(/^scope: .*infrastructure/),
    });
  });
});
