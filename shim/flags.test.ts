import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ShimConfigError } from "./config.js";
import { flagOptions, helpText, parseCommandLine } from "./flags.js";

describe("parseCommandLine", () => {
  it("run is the default; --help and --version win over the command", () => {
    expect(parseCommandLine([]).command).toBe("run");
    expect(parseCommandLine(["status", "--json"]).command).toBe("status");
    expect(parseCommandLine(["bogus", "--help"]).command).toBe("help");
    expect(parseCommandLine(["-h"]).command).toBe("help");
    expect(parseCommandLine(["install", "--version"]).command).toBe("version");
  });

  it("refuses an unknown command, an extra argument and an unknown flag", () => {
    expect(() => parseCommandLine(["bogus"])).toThrow(/unknown command 'bogus'/);
    expect(() => parseCommandLine(["run", "x"])).toThrow(/unexpected argument 'x'/);
    expect(() => parseCommandLine(["run", "x"])).toThrow(ShimConfigError);
    expect(() => parseCommandLine(["--bogus"])).toThrow(/bogus/);
  });

  it("makes path flags absolute against the working directory; --config stays as given", () => {
    const { flags } = parseCommandLine([
      "install",
      "--token-file=tok",
      "--ca=./a/../ca.pem",
      "--state-file=/abs/./s.json",
      "--root=img",
      "--config=shim.json",
    ]);
    expect(flags["token-file"]).toBe(resolve("tok"));
    expect(flags.ca).toBe(resolve("ca.pem"));
    expect(flags["state-file"]).toBe("/abs/s.json");
    expect(flags.root).toBe(resolve("img"));
    expect(flags.config).toBe("shim.json");
  });
});

describe("flagOptions", () => {
  it("maps the flags given, and only those", () => {
    const { flags } = parseCommandLine([
      "--server=h:1",
      "--unit=app:A,B:reload",
      "--unit=web",
      "--debounce-ms=0",
      "--backoff-max-ms=9",
      "--log-level=debug",
    ]);
    expect(flagOptions(flags)).toEqual({
      server: "h:1",
      units: [
        { name: "app.service", keys: ["A", "B"], action: "reload" },
        { name: "web.service", keys: ["*"], action: "restart" },
      ],
      debounceMs: 0,
      backoff: { maxMs: 9 },
      logLevel: "debug",
    });
    expect(flagOptions(parseCommandLine([]).flags)).toEqual({});
  });

  it("refuses a number that is not whole", () => {
    const { flags } = parseCommandLine(["--heartbeat-ms=1.5"]);
    expect(() => flagOptions(flags)).toThrow("--heartbeat-ms: '1.5' is not a whole number");
  });
});

it("the help text names every subcommand, the new flags and the version", () => {
  const h = helpText("9.9.9");
  expect(h).toContain("vm-auth-shim 9.9.9");
  for (const c of ["[run]", "install", "uninstall [--purge]", "status", "restore"]) {
    expect(h).toContain(c);
  }
  for (const f of ["--bundle FILE|-", "--insecure", "--purge", "LoadCredential=", "restart"]) {
    expect(h).toContain(f);
  }
});

describe("install and uninstall flags", () => {
  it("--bundle is a path (or - for stdin) and only for install; --purge only for uninstall", () => {
    expect(parseCommandLine(["install", "--bundle", "b.txt"]).flags.bundle).toBe(resolve("b.txt"));
    expect(parseCommandLine(["install", "--bundle", "-"]).flags.bundle).toBe("-");
    expect(parseCommandLine(["uninstall", "--purge"]).command).toBe("uninstall");
    expect(() => parseCommandLine(["run", "--bundle", "b"])).toThrow("--bundle: only for install");
    expect(() => parseCommandLine(["install", "--purge"])).toThrow("--purge: only for uninstall");
    expect(() => parseCommandLine(["run", "--node", "/usr/bin/node"])).toThrow(
      "--node: only for install",
    );
    expect(parseCommandLine(["install", "--node", "n"]).flags.node).toBe(resolve("n"));
  });

  it("--insecure maps to insecure", () => {
    expect(flagOptions(parseCommandLine(["--insecure"]).flags)).toEqual({ insecure: true });
  });
});
