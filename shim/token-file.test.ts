import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ShimConfigError } from "./config.js";
import { readToken, readTokenFile, tokenSource } from "./token-file.js";

const dir = mkdtempSync(join(tmpdir(), "shim-token-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readTokenFile", () => {
  const token = "vmat_secret-token-do-not-print";
  const file = (name: string, mode: number, content = `${token}\n`) => {
    const f = join(dir, name);
    writeFileSync(f, content);
    chmodSync(f, mode);
    return f;
  };

  it("reads a 0600 or 0400 file, trimmed", () => {
    expect(readTokenFile(file("t600", 0o600))).toBe(token);
    expect(readTokenFile(file("t400", 0o400))).toBe(token);
  });

  it("refuses group/world access, naming the file and never printing the token", () => {
    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
      const f = file(`t${mode.toString(8)}`, mode);
      let msg = "";
      try {
        readTokenFile(f);
      } catch (err) {
        expect(err).toBeInstanceOf(ShimConfigError);
        msg = (err as Error).message;
      }
      expect(msg).toContain(f);
      expect(msg).toContain(`0${mode.toString(8)}`);
      expect(msg).not.toContain(token);
    }
  });

  it.skipIf(process.getuid?.() !== 0)("refuses a file owned by another user", () => {
    const f = file("tother", 0o600);
    chownSync(f, 4242, 4242);
    expect(() => readTokenFile(f)).toThrow(/owned by uid 4242/);
  });

  it("refuses missing, directory, empty and multi-token files", () => {
    expect(() => readTokenFile(join(dir, "nope"))).toThrow(/cannot open .*nope: ENOENT/);
    expect(() => readTokenFile(dir)).toThrow(/not a regular file|mode/);
    expect(() => readTokenFile(file("tempty", 0o600, "\n"))).toThrow(/one token on one line/);
    const two = file("ttwo", 0o600, "a b\n");
    expect(() => readTokenFile(two)).toThrow(/one token on one line/);
  });

  it("a systemd credential may be 0440 (never group-writable or world-readable)", () => {
    const f = file("cred440", 0o440);
    expect(() => readTokenFile(f)).toThrow(/mode 0440/);
    expect(readTokenFile(f, { credential: true })).toBe(token);
    for (const mode of [0o460, 0o444, 0o404, 0o450]) {
      const g = file(`cred${mode.toString(8)}`, mode);
      expect(() => readTokenFile(g, { credential: true })).toThrow(
        `tokenFile: credential ${g} has mode 0${mode.toString(8)}; it must be 0440 or stricter`,
      );
    }
  });
});

describe("tokenSource", () => {
  it("$CREDENTIALS_DIRECTORY/token when set and present, else the token file", () => {
    const creds = join(dir, "creds");
    const cred = join(creds, "token");
    mkdirSync(creds, { recursive: true });
    const fallback = join(dir, "fallback");
    expect(tokenSource(fallback, {})).toEqual({ file: fallback, credential: false });
    expect(tokenSource(fallback, { CREDENTIALS_DIRECTORY: creds })).toEqual({
      file: fallback,
      credential: false,
    });
    writeFileSync(cred, "vmat_from-credential\n");
    chmodSync(cred, 0o440);
    const src = tokenSource(fallback, { CREDENTIALS_DIRECTORY: creds });
    expect(src).toEqual({ file: cred, credential: true });
    expect(readToken(src)).toBe("vmat_from-credential");
  });
});
