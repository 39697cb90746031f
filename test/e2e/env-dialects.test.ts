// biome-ignore-all lint/suspicious/noTemplateCurlyInString: literal ${...} is test data here
/**
 * Proves client/env-render.ts against real systemd 252 in a throw-away nspawn machine: every value a
 * renderer writes reaches the service (EnvironmentFile=) or the user service (environment.d)
 * byte for byte, and every value it leaves out is really one that dialect cannot carry.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderEnvironmentD, renderEnvironmentFile } from "../../client/env-render.js";
import { bootContainer, type Container, nspawnAvailable } from "./helpers/nspawn.js";

const avail = nspawnAvailable();
const inCI = Boolean(process.env.CI);
if (!avail.ok) {
  console.warn(`env-dialects e2e: ${inCI ? "FAILING (CI requires it)" : "skipped"}: ${avail.why}`);
}

const ALL_CONTROLS = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join("");
const FIXED: Record<string, string> = {
  T_PLAIN: "sk-abc123",
  T_DQ: '"',
  T_SQ: "'",
  T_BS: "\\",
  T_BS_END: "abc\\",
  T_BS_NL: "a\\\nb",
  T_BS_ESCAPES: '\\n\\t\\$\\`\\"\\\\\\x41',
  T_QUOTES: `he said "hi" and 'bye'`,
  T_DOLLAR: "$",
  T_DOLLARS: "$$ $$$ ${ $HOME ${HOME} ${HOME:-d} ${X:+a} $(id) end$",
  T_BACKTICK: "`id` \\`",
  T_HASH: "#not a comment",
  T_SEMI: ";nor this",
  T_SPACES: "  lead and trail  ",
  T_NBSP: "\u00a0nbsp\u00a0",
  T_EQUALS: "=a=b==",
  T_TAB: "\ta\tb\t",
  T_UNICODE: "héllo wörld 日本 😀 \u0085 \u2028 \uFEFF \u{10FFFD}",
  T_LF: "a\nb\n",
  T_CR: "a\rb",
  T_CRLF: "line1\r\nline2\r\n",
  T_CONTROLS: `x${ALL_CONTROLS}\x7fy`,
  T_ASSIGN_INSIDE: "x\nT_EVIL=1\n# c",
  T_PEM:
    "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAAS+/=\n-----END PRIVATE KEY-----\n",
  T_EMPTY: "",
  T_NONCHAR: "a\uFFFEb",
  T_NONCHAR2: "\uFDD0",
  T_BIG: Array.from({ length: 2048 }, (_, i) => `${i}:"$\\'#\u00e9`.padEnd(32, "x")).join(""),
};

/** Asserts env carries exactly the rendered values (byte for byte) and none of the omitted. */
function expectCarried(
  env: Map<string, string>,
  vars: Record<string, string>,
  omitted: { name: string }[],
) {
  const left = new Set(omitted.map((o) => o.name));
  const wrong: string[] = [];
  for (const [name, want] of Object.entries(vars)) {
    const got = env.get(name);
    if (left.has(name)) {
      if (got !== undefined) wrong.push(`${name}: omitted but present`);
    } else if (got === undefined || !Buffer.from(got).equals(Buffer.from(want))) {
      const show = (s: string | undefined) => (s === undefined ? "<missing>" : JSON.stringify(s));
      wrong.push(`${name}: want ${show(want).slice(0, 300)} got ${show(got).slice(0, 300)}`);
    }
  }
  expect(wrong).toEqual([]);
}

let unitSeq = 0;
/** Starts a transient service with EnvironmentFile=<path> and returns its main process' env. */
async function serviceEnv(c: Container, path: string): Promise<Map<string, string>> {
  const unit = `vmauth-envprobe-${++unitSeq}.service`;
  // Type=exec: systemd-run returns after execve, so /proc/MainPID/environ is the service's own.
  await c.exec([
    "systemd-run",
    "--quiet",
    `--unit=${unit}`,
    "-p",
    "Type=exec",
    "-p",
    `EnvironmentFile=${path}`,
    "sleep",
    "infinity",
  ]);
  try {
    return await c.unitEnv(unit);
  } finally {
    await c.systemctl("stop", unit);
  }
}

describe.skipIf(!avail.ok && !inCI)("env dialects on real systemd (nspawn)", () => {
  let c: Container;

  beforeAll(async () => {
    if (!avail.ok) throw new Error(`CI requires the nspawn e2e suite: ${avail.why}`);
    c = await bootContainer({ timeoutMs: 30_000 });
    console.info(`env-dialects e2e: container ${c.name} booted in ${c.bootMs} ms`);
  }, 45_000);

  afterAll(async () => {
    await c?.stop();
  }, 20_000);

  it("EnvironmentFile= dialect: every fixed value reaches the service byte for byte", async () => {
    const r = renderEnvironmentFile(FIXED);
    expect(r.omitted.map((o) => o.name).sort()).toEqual(["T_NONCHAR", "T_NONCHAR2"]);
    await c.writeFile("/run/vm-auth/env", r.text, 0o600);
    expectCarried(await serviceEnv(c, "/run/vm-auth/env"), FIXED, r.omitted);
  }, 20_000);

  it("environment.d dialect: the user service gets every value it can carry", async () => {
    const r = renderEnvironmentD(FIXED);
    const isControl = (ch: string) => ch < " " || ch === "\x7f";
    const controls = Object.entries(FIXED).filter(([, v]) => [...v].some(isControl));
    const expectedOmitted = [...controls.map(([k]) => k), "T_NONCHAR", "T_NONCHAR2"].sort();
    expect(r.omitted.map((o) => o.name).sort()).toEqual(expectedOmitted);
    await c.writeFile("/etc/environment.d/vm-auth.conf", r.text, 0o644);
    const started = Date.now();
    const env = await c.userServiceEnv();
    console.info(
      `env-dialects e2e: user manager restart + user service in ${Date.now() - started} ms`,
    );
    expectCarried(env, FIXED, r.omitted);
    expect(env.get("T_EVIL")).toBeUndefined();
  }, 30_000);

  it("why values are omitted: systemd 252 loses more than the one bad value", async () => {
    // One noncharacter fails the whole EnvironmentFile (with `-` every var is silently lost) ...
    await c.writeFile("/run/vm-auth/bad.env", 'GOOD="x"\nBAD="a\uFFFEb"\n');
    const svc = await serviceEnv(c, "-/run/vm-auth/bad.env");
    expect(svc.has("GOOD")).toBe(false);
    // ... and crashes the environment.d generator, dropping every environment.d variable.
    await c.writeFile("/etc/environment.d/vm-auth.conf", 'GOOD="x"\n');
    await c.writeFile("/etc/environment.d/zz-bad.conf", 'BAD="a\uFFFEb"\n');
    const user = await c.userServiceEnv();
    expect(user.has("GOOD")).toBe(false);
    // A raw newline is carried to the user service as the two characters backslash and n.
    await c.exec(["rm", "-f", "/etc/environment.d/zz-bad.conf"]);
    await c.writeFile("/etc/environment.d/vm-auth.conf", 'GOOD="x"\nNL="a\nb"\n');
    const user2 = await c.userServiceEnv();
    expect(user2.get("GOOD")).toBe("x");
    expect(user2.get("NL")).toBe("a\\nb");
  }, 30_000);

  it("property: generated values (full Unicode, biased to tricky ones) round-trip in both dialects", async () => {
    const tricky = fc.constantFrom(
      ...['"', "'", "\\", "$", "$$", "${", "}", "${HOME}", "$X", "\\$", "\\\\", "\\\n", "`", "#"],
      ...[";", "=", " ", "  ", "\t", "\n", "\r", "\r\n", "\x01", "\x1b", "\x7f", "\u0085"],
      ...["\u00a0", "\u2028", "\uFEFF", "é", "日", "😀", "\u{10FFFD}", "\uFFFE", "\uFDD0"],
    );
    const bmp = fc
      .integer({ min: 1, max: 0xffff })
      .filter((cp) => cp < 0xd800 || cp > 0xdfff)
      .map((cp) => String.fromCharCode(cp));
    const value = fc
      .array(
        fc.oneof(
          { weight: 4, arbitrary: tricky },
          { weight: 2, arbitrary: bmp },
          { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 3 }) },
          { weight: 2, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 6 }) },
        ),
        { maxLength: 24 },
      )
      .map((parts) => parts.join(""));
    const batch = fc.array(value, { minLength: 200, maxLength: 200 });
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(batch, async (values) => {
        const vars = Object.fromEntries(
          values.map((v, i) => [`P_${String(i).padStart(4, "0")}`, v]),
        );
        const file = renderEnvironmentFile(vars);
        await c.writeFile("/run/vm-auth/env", file.text, 0o600);
        expectCarried(await serviceEnv(c, "/run/vm-auth/env"), vars, file.omitted);
        const envd = renderEnvironmentD(vars);
        await c.writeFile("/etc/environment.d/vm-auth.conf", envd.text, 0o644);
        expectCarried(await c.userServiceEnv(), vars, envd.omitted);
        checked += values.length;
      }),
      // Each failing value is reported by name and content; shrinking 200-value boots is not worth it.
      { numRuns: 10, endOnFailure: true },
    );
    console.info(`env-dialects e2e: ${checked} generated values checked in both dialects`);
  }, 60_000);
});
