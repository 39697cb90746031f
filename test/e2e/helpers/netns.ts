/**
 * A private network between the host and one nspawn machine, for e2e tests that must not lean
 * on the shared host network: a named network namespace (`ip netns add`) and a veth pair, the
 * host end in the root namespace with `.1` of a /30 and the guest end inside with `.2`. A
 * machine booted with `bootContainer({ networkNamespace: ns.path })` sees only that link and
 * its own loopback, so it reaches a server on the host side address and nothing on the host's
 * 127.0.0.1, as a VM on a bridge would.
 *
 * The /30 is chosen at random in 10.231.0.0/16 and skipped while any address of it is already
 * on a host interface, so parallel runs do not clash. Names carry a recognisable prefix and the
 * creating pid (namespace name, and the host link's alias, since a link name has 15 bytes), so
 * a later run deletes what a crashed run left behind, and never another live run's.
 */
import { execFile } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Every namespace and host link alias we create starts with this; see {@link removeStale}. */
export const NETNS_PREFIX = "vmauth-e2e-";
const LINK_PREFIX = "vmat";
const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A network namespace joined to the host by a veth pair. */
export interface PrivateNetwork {
  /** Namespace name (`ip netns` / `ip -n`). */
  readonly name: string;
  /** Its bind mount, for `systemd-nspawn --network-namespace-path=`. */
  readonly path: string;
  /** The host end's interface name (root namespace). */
  readonly hostLink: string;
  /** The guest end's interface name (inside the namespace). */
  readonly guestLink: string;
  /** The host end's address, e.g. `10.231.17.5` (prefix /30). */
  readonly hostAddress: string;
  /** The guest end's address, the host's + 1. */
  readonly guestAddress: string;
  /** Deletes the namespace (which takes the veth pair with it) and the host link. Idempotent. */
  remove(): Promise<void>;
}

/** Whether this process can make namespaces and links: Linux, root and `ip` (iproute2). */
export function netnsAvailable(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== "linux") return { ok: false, why: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, why: "needs root (ip netns, ip link)" };
  if (!CLEAN_PATH.split(":").some((d) => existsSync(`${d}/ip`))) {
    return { ok: false, why: "ip not found (Debian package iproute2)" };
  }
  return { ok: true };
}

/**
 * Creates the namespace, the veth pair and their addresses, and brings both ends (and the
 * namespace's loopback) up. Removes stale ones of dead runs first.
 * @throws with the failing `ip` command and its stderr; anything half made is removed
 */
export async function createPrivateNetwork(): Promise<PrivateNetwork> {
  await removeStale();
  const id = randomBytes(4).toString("hex");
  const name = `${NETNS_PREFIX}${process.pid}-${id}`;
  const hostLink = `${LINK_PREFIX}${id}h`;
  const guestLink = `${LINK_PREFIX}${id}g`;
  const base = await freeSubnet();
  const hostAddress = `10.231.${base[0]}.${base[1] + 1}`;
  const guestAddress = `10.231.${base[0]}.${base[1] + 2}`;

  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> => {
    removed ??= (async () => {
      // The namespace's end dies with the namespace, and the pair with it; deleting the host
      // end as well covers a namespace still pinned by a process that outlived its machine.
      await ip("netns", "delete", name).catch(() => {});
      await ip("link", "delete", hostLink).catch(() => {});
    })();
    return removed;
  };
  try {
    await ip("netns", "add", name);
    await ip("link", "add", hostLink, "type", "veth", "peer", "name", guestLink, "netns", name);
    await ip("link", "set", "dev", hostLink, "alias", name);
    await ip("addr", "add", `${hostAddress}/30`, "dev", hostLink);
    await ip("link", "set", "dev", hostLink, "up");
    await ip("-n", name, "addr", "add", `${guestAddress}/30`, "dev", guestLink);
    await ip("-n", name, "link", "set", "dev", guestLink, "up");
    await ip("-n", name, "link", "set", "dev", "lo", "up");
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    name,
    path: `/run/netns/${name}`,
    hostLink,
    guestLink,
    hostAddress,
    guestAddress,
    remove,
  };
}

/**
 * Deletes namespaces and host links this helper made in runs whose process is gone (a crash, a
 * SIGKILLed vitest). Returns what it deleted, for the test that proves it.
 */
export async function removeStale(): Promise<string[]> {
  const gone: string[] = [];
  const { stdout: nsList } = await ip("netns", "list");
  for (const line of nsList.split("\n")) {
    const ns = line.trim().split(/\s+/)[0] ?? "";
    if (ns.startsWith(NETNS_PREFIX) && !ownerAlive(ns)) {
      await ip("netns", "delete", ns).catch(() => {});
      gone.push(ns);
    }
  }
  const { stdout: links } = await ip("-j", "link", "show", "type", "veth");
  for (const l of JSON.parse(links || "[]") as { ifname: string; ifalias?: string }[]) {
    const alias = l.ifalias ?? "";
    if (l.ifname.startsWith(LINK_PREFIX) && alias.startsWith(NETNS_PREFIX) && !ownerAlive(alias)) {
      await ip("link", "delete", l.ifname).catch(() => {});
      gone.push(l.ifname);
    }
  }
  return gone;
}

// --- internal ---

async function ip(...args: string[]): Promise<{ stdout: string }> {
  try {
    const { stdout } = await run("ip", args, { env: { PATH: CLEAN_PATH }, timeout: 10_000 });
    return { stdout };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Whether the pid in `vmauth-e2e-<pid>-<id>` still runs. */
function ownerAlive(name: string): boolean {
  const pid = Number(name.slice(NETNS_PREFIX.length).split("-")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A random /30 in 10.231.0.0/16 (third octet, first host - 1) that no host address is in. */
async function freeSubnet(): Promise<[number, number]> {
  const { stdout } = await ip("-j", "-4", "addr", "show");
  const used = new Set<string>();
  for (const i of JSON.parse(stdout || "[]") as { addr_info?: { local?: string }[] }[]) {
    for (const a of i.addr_info ?? []) {
      const m = /^10\.231\.(\d+)\.(\d+)$/.exec(a.local ?? "");
      if (m) used.add(`${m[1]}.${Number(m[2]) & ~3}`);
    }
  }
  for (let tries = 0; tries < 64; tries++) {
    const third = randomInt(0, 256);
    const fourth = randomInt(0, 64) * 4;
    if (!used.has(`${third}.${fourth}`)) return [third, fourth];
  }
  throw new Error("no free /30 in 10.231.0.0/16 after 64 tries");
}
