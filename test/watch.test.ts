import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { VmAuthClient } from "../client/index.js";
import type { WatchEnvResponse } from "../proto/gen/vmauth/v1/env_pb.js";
import { MAX_STREAMS_PER_VM } from "../server/secrets/watch.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";
import { openWatch } from "./helpers/watch.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ heartbeatMs: 200 });
  await d.client.access.createGroup({ name: "ml" });
});
afterAll(async () => {
  await d.dispose();
});

/** Opens a WatchEnv stream and collects its frames. */
function watch(client: VmAuthClient, req: { sinceRevision?: bigint; appliedDigest?: string } = {}) {
  const ac = new AbortController();
  const frames: WatchEnvResponse[] = [];
  const waiters: (() => void)[] = [];
  const done = (async () => {
    for await (const f of client.env.watchEnv(
      { clientVersion: "test/1", ...req },
      { signal: ac.signal },
    )) {
      frames.push(f);
      for (const w of waiters.splice(0)) w();
    }
  })().catch((err: unknown) => err);
  const snapshots = () =>
    frames.filter((f) => f.event.case === "snapshot").map((f) => f.event.value);
  const until = async (pred: () => boolean, ms = 3000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error("timed out waiting for frames");
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { frames, snapshots, until, done, cancel: () => ac.abort() };
}

const vars = (s: unknown) =>
  Object.fromEntries(
    ((s as { vars: { name: string; value: string }[] }).vars ?? []).map((v) => [v.name, v.value]),
  );

describe("WatchEnv", () => {
  test("snapshot at once, then one per change that touches the VM, none for others", async () => {
    const v1 = secretValue();
    await d.client.secrets.createSecret({ name: "openai", value: v1 });
    const a = await d.client.access.createVm({ name: "wa", groups: ["ml"] });
    const b = await d.client.access.createVm({ name: "wb" });
    const wa = watch(d.tcpClient(a.token));
    const wb = watch(d.tcpClient(b.token));
    await wa.until(() => wa.snapshots().length === 1);
    await wb.until(() => wb.snapshots().length === 1);
    expect(vars(wa.snapshots()[0])).toEqual({ OPENAI_API_KEY: v1 });

    // A group-scoped secret reaches only the group's VM.
    const g = secretValue();
    await d.client.secrets.createSecret({
      name: "hf",
      provider: "huggingface",
      scope: "group:ml",
      value: g,
    });
    await wa.until(() => wa.snapshots().length === 2);
    expect(vars(wa.snapshots()[1])).toEqual({ OPENAI_API_KEY: v1, HF_TOKEN: g });

    // A VM-scoped secret for wb reaches wb only.
    await d.client.secrets.createSecret({ name: "own", scope: "vm:wb", value: secretValue() });
    await wb.until(() => wb.snapshots().length === 2);

    // A global rotation reaches both.
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: "openai", value: v2 });
    await wa.until(() => wa.snapshots().length === 3);
    await wb.until(() => wb.snapshots().length === 3);
    expect(wa.snapshots()[2]?.revision).toBe(rot.revision);
    expect(vars(wb.snapshots()[2]).OPENAI_API_KEY).toBe(v2);
    // Heartbeats keep coming; no extra snapshot arrived for changes to the other VM.
    await wa.until(() => wa.frames.filter((f) => f.event.case === "heartbeat").length >= 2);
    expect(wa.snapshots()).toHaveLength(3);
    wa.cancel();
    wb.cancel();
  });

  test("a burst of changes is coalesced; the last snapshot is the final state", async () => {
    const vm = await d.client.access.createVm({ name: "wburst" });
    const w = watch(d.tcpClient(vm.token));
    await w.until(() => w.snapshots().length === 1);
    let last = "";
    let lastRev = 0n;
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        last = secretValue();
        const r = await d.client.secrets.rotateSecret({ name: "openai", value: last });
        if (r.revision > lastRev) lastRev = r.revision;
      }),
    );
    await w.until(() => w.snapshots().at(-1)?.revision === lastRev);
    expect(w.snapshots().length).toBeLessThan(31);
    const final = (await d.client.secrets.getSecretValue({ name: "openai" })).value;
    expect(vars(w.snapshots().at(-1)).OPENAI_API_KEY).toBe(final);
    w.cancel();
  });

  test("a fan-out to 330 streams: each gets every change in order, once, ending at the last", async () => {
    // 66 VMs × 5 streams: a VM may hold at most MAX_STREAMS_PER_VM streams (issue #8).
    const vms = await Promise.all(
      Array.from({ length: 66 }, (_, i) => d.client.access.createVm({ name: `wf${i}` })),
    );
    const ws = vms.flatMap((vm) => {
      const c = d.tcpClient(vm.token);
      return Array.from({ length: 5 }, () => watch(c));
    });
    for (const w of ws) await w.until(() => w.snapshots().length === 1);
    let lastRev = 0n;
    for (let i = 0; i < 6; i++) {
      const r = await d.client.secrets.rotateSecret({ name: "openai", value: secretValue() });
      lastRev = r.revision;
    }
    for (const w of ws) await w.until(() => w.snapshots().at(-1)?.revision === lastRev, 10_000);
    const final = (await d.client.secrets.getSecretValue({ name: "openai" })).value;
    for (const w of ws) {
      const revs = w.snapshots().map((s) => s?.revision ?? 0n);
      expect(revs).toEqual([...revs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(new Set(revs).size).toBe(revs.length);
      expect(vars(w.snapshots().at(-1)).OPENAI_API_KEY).toBe(final);
      w.cancel();
    }
  });

  test("a global change fans out to VMs of different views, interleaved: each gets its own", async () => {
    // Store order alternates group member / plain / VM-scoped secret, so consecutive VMs of a
    // fan-out never share a view: a frame meant for one view must never reach another.
    const own: Record<string, string> = {};
    const ws: { name: string; kind: number; w: ReturnType<typeof watch> }[] = [];
    for (let i = 0; i < 9; i++) {
      const name = `wi${i}`;
      const vm = await d.client.access.createVm({ name, groups: i % 3 === 0 ? ["ml"] : [] });
      if (i % 3 === 2) {
        own[name] = secretValue();
        await d.client.secrets.createSecret({
          name: `o-${name}`,
          env: "VM_OWN",
          scope: `vm:${name}`,
          value: own[name],
        });
      }
      ws.push({ name, kind: i % 3, w: watch(d.tcpClient(vm.token)) });
    }
    for (const { w } of ws) await w.until(() => w.snapshots().length >= 1);
    const v = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: "openai", value: v });
    const hf = (await d.client.secrets.getSecretValue({ name: "hf" })).value;
    for (const { name, kind, w } of ws) {
      await w.until(() => w.snapshots().at(-1)?.revision === rot.revision);
      const want: Record<string, string> = { OPENAI_API_KEY: v };
      if (kind === 0) want.HF_TOKEN = hf;
      if (kind === 2) want.VM_OWN = own[name] as string;
      expect(vars(w.snapshots().at(-1))).toEqual(want);
      w.cancel();
    }
  });

  test("heartbeats come every interval to each stream, spread over the interval", async () => {
    // 6 VMs × 8 streams (the per-VM cap).
    const ws = [];
    for (let i = 0; i < 6; i++) {
      const vm = await d.client.access.createVm({ name: `whb${i}` });
      const c = d.tcpClient(vm.token);
      for (let k = 0; k < MAX_STREAMS_PER_VM; k++) ws.push(watch(c));
    }
    const seen = ws.map(() => [] as number[]);
    ws.forEach((w, i) => {
      // Arrival times of heartbeats after the first (which every stream gets on opening).
      const t = setInterval(() => {
        const n = w.frames.filter((f) => f.event.case === "heartbeat").length;
        while ((seen[i] as number[]).length < n - 1) (seen[i] as number[]).push(performance.now());
      }, 2);
      void w.done.finally(() => clearInterval(t));
    });
    for (const w of ws) {
      await w.until(() => w.frames.filter((f) => f.event.case === "heartbeat").length >= 4, 5000);
    }
    for (const w of ws) w.cancel();
    // Every stream keeps the 200 ms period...
    for (const times of seen) {
      const gaps = times.slice(1).map((t, k) => t - (times[k] as number));
      const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)] as number;
      expect(median).toBeGreaterThan(120);
      expect(median).toBeLessThan(320);
    }
    // ...but the streams do not all get theirs at the same moment (one burst would fall
    // within a few ms; 16 buckets spread them over the interval).
    const phases = seen.map((times) => (times[0] as number) % 200);
    const buckets = new Set(phases.map((p) => Math.floor(p / 12.5)));
    expect(buckets.size).toBeGreaterThan(4);
  });

  test("a reconnect with the applied digest gets no repeat; a stale one gets the change", async () => {
    const vm = await d.client.access.createVm({ name: "wre" });
    const c = d.tcpClient(vm.token);
    const first = watch(c);
    await first.until(() => first.snapshots().length === 1);
    const applied = first.snapshots()[0] as { revision: bigint; digest: string } | undefined;
    first.cancel();
    // Same digest: a heartbeat, no snapshot.
    const again = watch(c, {
      sinceRevision: applied?.revision ?? 0n,
      appliedDigest: applied?.digest ?? "",
    });
    await again.until(() => again.frames.length >= 1);
    expect(again.frames[0]?.event.case).toBe("heartbeat");
    again.cancel();
    // A change while disconnected arrives at once on reconnect.
    const v = secretValue();
    await d.client.secrets.rotateSecret({ name: "openai", value: v });
    const later = watch(c, {
      sinceRevision: applied?.revision ?? 0n,
      appliedDigest: applied?.digest ?? "",
    });
    await later.until(() => later.snapshots().length === 1);
    expect(vars(later.snapshots()[0]).OPENAI_API_KEY).toBe(v);
    later.cancel();
  });

  test("acks show in vm list: connected, applied revision, behind, client version", async () => {
    const vm = await d.client.access.createVm({ name: "wack" });
    const c = d.tcpClient(vm.token);
    const w = watch(c);
    await w.until(() => w.snapshots().length === 1);
    const snap = w.snapshots()[0];
    let row = (await d.client.access.listVms({})).vms.find((v) => v.name === "wack");
    expect(row).toMatchObject({ connected: true, behind: true, clientVersion: "test/1" });
    await c.env.ackEnv({
      revision: snap?.revision ?? 0n,
      restartedUnits: ["app.service"],
      clientVersion: "test/1",
    });
    row = (await d.client.access.listVms({})).vms.find((v) => v.name === "wack");
    expect(row).toMatchObject({
      connected: true,
      behind: false,
      appliedRevision: snap?.revision,
      lastRestartedUnits: ["app.service"],
    });
    await d.client.secrets.rotateSecret({ name: "openai", value: secretValue() });
    await w.until(() => w.snapshots().length === 2);
    row = (await d.client.access.listVms({})).vms.find((v) => v.name === "wack");
    expect(row?.behind).toBe(true);
    w.cancel();
    await new Promise((r) => setTimeout(r, 100));
    row = (await d.client.access.listVms({})).vms.find((v) => v.name === "wack");
    expect(row?.connected).toBe(false);
  });

  test("revoking a VM's token ends its stream at once", async () => {
    const vm = await d.client.access.createVm({ name: "wrev" });
    const w = watch(d.tcpClient(vm.token));
    await w.until(() => w.snapshots().length === 1);
    const t0 = Date.now();
    await d.client.access.revokeVmTokens({ name: "wrev" });
    const err = (await w.done) as { code?: string };
    expect(err?.code).toBe("unauthenticated");
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test("a VM token cannot watch another VM", async () => {
    const vm = await d.client.access.createVm({ name: "wiso" });
    const w = watch(d.tcpClient(vm.token), {});
    await w.until(() => w.snapshots().length === 1);
    w.cancel();
    const other = d.tcpClient(vm.token);
    const it = other.env.watchEnv({ vm: "wa" })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: "permission_denied" });
  });

  test("bad acks are refused, naming the field", async () => {
    const vm = await d.client.access.createVm({ name: "wbad" });
    const c = d.tcpClient(vm.token);
    await expect(c.env.ackEnv({ revision: 1n << 60n })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "revision",
    });
    await expect(
      c.env.ackEnv({ revision: 1n, restartedUnits: ["a b; rm -rf /"] }),
    ).rejects.toMatchObject({
      code: "invalid_argument",
      field: "restarted_units",
    });
    await expect(c.env.ackEnv({ revision: 1n, omitted: ["lower"] })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "omitted",
    });
    await expect(c.env.ackEnv({ vm: "wa", revision: 1n })).rejects.toMatchObject({
      code: "permission_denied",
    });
  });

  test("a shim ahead of the store gets a fresh snapshot and shows diverged until it acks one", async () => {
    const vm = await d.client.access.createVm({ name: "wahead" });
    const c = d.tcpClient(vm.token);
    const first = watch(c);
    await first.until(() => first.snapshots().length === 1);
    const head = first.snapshots()[0];
    const digest = head && "digest" in head ? head.digest : "";
    expect(digest).not.toBe("");
    first.cancel();
    // Its cursor names a revision this store never had, with the current digest: a store
    // restored from a backup, or one that lost what the shim applied.
    const w = watch(c, { sinceRevision: 1n << 40n, appliedDigest: digest });
    await w.until(() => w.snapshots().length === 1);
    const snap = w.snapshots()[0];
    const status = await d.client.system.getStatus({});
    expect(snap?.revision).toBe(status.revision);
    const listed = async () =>
      (await d.client.access.listVms({})).vms.find((v) => v.name === "wahead");
    expect((await listed())?.diverged).toBe(true);
    expect((await listed())?.appliedRevision).toBeLessThanOrEqual(status.revision);
    await c.env.ackEnv({ revision: snap?.revision ?? 0n });
    expect(await listed()).toMatchObject({
      diverged: false,
      behind: false,
      appliedRevision: snap?.revision,
    });
    w.cancel();
  });

  test("an ack ahead of the store resyncs the VM's streams and shows it diverged", async () => {
    const vm = await d.client.access.createVm({ name: "wacka" });
    const c = d.tcpClient(vm.token);
    const w = watch(c);
    await w.until(() => w.snapshots().length === 1);
    await c.env.ackEnv({ revision: w.snapshots()[0]?.revision ?? 0n });
    await c.env.ackEnv({ revision: (w.snapshots()[0]?.revision ?? 0n) + 1000n });
    await w.until(() => w.snapshots().length === 2);
    const listed = async () =>
      (await d.client.access.listVms({})).vms.find((v) => v.name === "wacka");
    expect((await listed())?.diverged).toBe(true);
    await c.env.ackEnv({ revision: w.snapshots()[1]?.revision ?? 0n });
    expect((await listed())?.diverged).toBe(false);
    w.cancel();
  });

  test("a VM holds at most MAX_STREAMS_PER_VM streams: one more is refused, the rest served", async () => {
    const vm = await d.client.access.createVm({ name: "wcap" });
    const other = await d.client.access.createVm({ name: "wcap-other" });
    const c = d.tcpClient(vm.token);
    const ws = [];
    for (let i = 0; i < MAX_STREAMS_PER_VM; i++) {
      const w = watch(c);
      await w.until(() => w.snapshots().length === 1);
      ws.push(w);
    }
    const extra = watch(c);
    const err = await extra.done;
    expect(err).toMatchObject({ code: "resource_exhausted" });
    expect(String((err as Error).message)).toContain(
      `vm 'wcap' already has ${MAX_STREAMS_PER_VM} WatchEnv streams open`,
    );
    expect(extra.snapshots()).toHaveLength(0);
    // The open ones, and another VM, are served.
    const o = watch(d.tcpClient(other.token));
    await o.until(() => o.snapshots().length === 1);
    const v = secretValue();
    const r = await d.client.secrets.rotateSecret({ name: "openai", value: v });
    for (const w of [...ws, o]) {
      await w.until(() => w.snapshots().at(-1)?.revision === r.revision);
    }
    for (const w of [...ws, o]) w.cancel();
  });

  test("revoking an admin token ends the WatchEnv streams it opened", async () => {
    await d.client.access.createVm({ name: "wadmin" });
    const t = await d.client.access.createAdminToken({ name: "watcher" });
    const ww = openWatch(d.tcpClient(t.token), { vm: "wadmin" });
    await ww.until(() => ww.snapshots().length === 1);
    await d.client.access.revokeAdminToken({ name: "watcher" });
    expect(await ww.done).toMatchObject({ code: "unauthenticated" });
    // A new token under the same name does not bring the old stream back, and works itself.
    const again = await d.client.access.createAdminToken({ name: "watcher" });
    const w3 = openWatch(d.tcpClient(again.token), { vm: "wadmin" });
    await w3.until(() => w3.snapshots().length === 1);
    w3.cancel();
  });
});
