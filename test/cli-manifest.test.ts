/**
 * secretsctl's `manifest` commands (issue #11), run as the built program against a real
 * secretsd: plan changes nothing; apply generates (every generator), fetches (a real command
 * and a real file) and says what a person must still provide; validate fails listing it;
 * `manifest prompt` asks for it on a real pseudo-terminal (util-linux `script`), without echo,
 * refusing a value that does not match the format; then validate passes, status names each
 * entry's state and source, and `vm list` shows the VMs incomplete, then complete.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner, CliSuite } from "./helpers/cli.js";
import { cliSuite, failed, ok, SECRETSCTL, use, value } from "./helpers/cli.js";

const suite: CliSuite = cliSuite("secretsctl-manifest-");
let cli: CliRunner;
/** The manifest file bound to group `prod` (web1, web2). */
let manifestFile: string;
/** What the fetch command prints, and what the fetched file holds. */
let fromCommand: string;
let fromFile: string;

const API_FORMAT = "sk-[a-z0-9]{8,40}";

beforeAll(async () => {
  cli = suite.cli;
  ok(await cli(["group", "add", "prod"]));
  ok(await cli(["vm", "add", "web1", "--group", "prod"]));
  ok(await cli(["vm", "add", "web2", "--group", "prod"]));
  ok(await cli(["vm", "add", "solo"]));
  // The values live outside the daemon's data dir, as in another system; the command's argv
  // names only a file (the manifest is stored in plaintext, so no value goes in it).
  fromCommand = value("fetched-cmd");
  fromFile = value("fetched-file");
  const cmdValue = join(suite.work, "cmd-value.txt");
  await writeFile(cmdValue, `${fromCommand}\n`, { mode: 0o600 });
  const script = join(suite.work, "fetch.sh");
  await writeFile(script, `#!/bin/sh\nexec /bin/cat '${cmdValue}'\n`);
  await chmod(script, 0o700);
  const file = join(suite.work, "fetched.txt");
  await writeFile(file, `${fromFile}\n`, { mode: 0o600 });
  manifestFile = join(suite.work, "web.json");
  await writeFile(
    manifestFile,
    JSON.stringify({
      name: "web",
      description: "the web tier",
      entries: [
        {
          id: "session",
          class: "per_install_generated",
          env: "SESSION_SECRET",
          description: "signs cookies",
          generator: { type: "random", length: 32, charset: "alnum" },
        },
        {
          id: "hex_key",
          class: "per_install_generated",
          env: "HEX_KEY",
          generator: { type: "random", length: 16, charset: "hex" },
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
          generator: { type: "random", length: 20, charset: "base64url" },
        },
        {
          id: "install_id",
          class: "per_install_generated",
          env: "INSTALL_ID",
          generator: { type: "uuid" },
        },
        {
          id: "api_key",
          class: "user_prompt",
          env: "API_KEY",
          label: "Billing API key",
          description: "from the billing console",
          format: API_FORMAT,
        },
        {
          id: "nickname",
          class: "user_prompt",
          env: "NICKNAME",
          required: false,
          description: "optional",
        },
        {
          id: "vault_token",
          class: "remote_fetch",
          env: "VAULT_TOKEN",
          fetch: { command: [script] },
        },
        { id: "mounted", class: "remote_fetch", env: "MOUNTED_TOKEN", fetch: { file } },
        {
          id: "db_root",
          class: "infrastructure",
          description: "host only",
          generator: { type: "random", length: 40, charset: "base64url" },
        },
      ],
    }),
  );
});

/** A secret's current value (read in process: fewer CLI runs), registered as a secret value. */
async function getValue(name: string): Promise<string> {
  return use((await suite.d.client.secrets.getSecretValue({ name })).value);
}

async function revision(): Promise<bigint> {
  return (await suite.d.client.system.getStatus({})).revision;
}

/** A table's rows, split into cells (cells are separated by two or more spaces). */
function rows(table: string): string[][] {
  return table
    .trimEnd()
    .split("\n")
    .map((l) => l.split(/ {2,}/));
}

interface VmJson {
  name: string;
  missingRequired: string[];
}

async function vms(): Promise<Map<string, VmJson>> {
  const j = JSON.parse(ok(await cli(["vm", "list", "--json"]))) as { vms: VmJson[] };
  return new Map(j.vms.map((v) => [v.name, v]));
}

const bind = ["--group", "prod"];

describe("command line", () => {
  test("a binding is required, and only one; a missing file or bad manifest is one line", async () => {
    const [none, both, missing, badClass, dupe] = await Promise.all([
      cli(["manifest", "plan", manifestFile]),
      cli(["manifest", "apply", manifestFile, "--vm", "solo", "--group", "prod"]),
      cli(["manifest", "plan", join(suite.work, "nope.json"), ...bind]),
      (async () => {
        const f = join(suite.work, "bad-class.json");
        await writeFile(f, JSON.stringify({ name: "bad", entries: [{ id: "a", class: "magic" }] }));
        return cli(["manifest", "apply", f, ...bind]);
      })(),
      (async () => {
        const f = join(suite.work, "dupe.json");
        const e = { id: "a", class: "user_prompt", env: "A_KEY" };
        await writeFile(f, JSON.stringify({ name: "dupe", entries: [e, { ...e, env: "B_KEY" }] }));
        return cli(["manifest", "plan", f, ...bind]);
      })(),
    ]);
    failed(none, 2, "--vm VM or --group GROUP");
    failed(both, 2, "not both");
    failed(missing, 1, /file: cannot read .*nope\.json \(ENOENT\)/);
    failed(badClass, 1, "entries[0].class");
    failed(dupe, 1, "entries[1].id");
    expect(JSON.parse(ok(await cli(["manifest", "list", "--json"])))).toEqual({ manifests: [] });
  });
});

describe("a manifest with every class, bound to a group", () => {
  test("plan: each entry's action and the env each VM would see; nothing changes", async () => {
    const before = await revision();
    const r = await cli(["manifest", "plan", manifestFile, ...bind]);
    const [entries = "", perVm = ""] = ok(r).split("\n\n");
    const table = rows(entries);
    expect(table[0]).toEqual(["ID", "CLASS", "TARGET", "ACTION", "STATE"]);
    expect(table.slice(1)).toContainEqual([
      "session",
      "per_install_generated",
      "web.session.web1@vm:web1",
      "generate",
      "missing",
    ]);
    expect(table.slice(1)).toContainEqual([
      "api_key",
      "user_prompt",
      "web.api_key@group:prod",
      "provide",
      "missing",
    ]);
    expect(table.slice(1)).toContainEqual([
      "vault_token",
      "remote_fetch",
      "web.vault_token@group:prod",
      "fetch",
      "missing",
    ]);
    expect(table.slice(1)).toContainEqual([
      "db_root",
      "infrastructure",
      "web.db_root@host",
      "generate",
      "missing",
    ]);
    // One row per VM for a per-install value, one for the binding otherwise.
    expect(table.filter((row) => row[0] === "session")).toHaveLength(2);
    expect(table.filter((row) => row[0] === "api_key")).toHaveLength(1);
    const env = "B64URL_KEY,B64_KEY,HEX_KEY,INSTALL_ID,MOUNTED_TOKEN,SESSION_SECRET,VAULT_TOKEN";
    expect(rows(perVm)).toEqual([
      ["VM", "ENV", "MISSING"],
      ["web1", env, "api_key"],
      ["web2", env, "api_key"],
    ]);
    expect(r.stderr).toBe("secretsctl: plan of manifest web: nothing was changed\n");
    const j = JSON.parse(ok(await cli(["manifest", "plan", manifestFile, ...bind, "--json"]))) as {
      name: string;
      entries: Record<string, unknown>[];
      vms: Record<string, unknown>[];
    };
    expect(j.name).toBe("web");
    expect(j.entries.find((e) => e.id === "api_key")).toEqual({
      id: "api_key",
      class: "user_prompt",
      env: "API_KEY",
      secret: "web.api_key",
      scope: "group:prod",
      action: "provide",
      state: "missing",
      required: true,
      description: "from the billing console",
      label: "Billing API key",
      format: API_FORMAT,
      error: "",
    });
    expect(j.vms[0]).toEqual({ vm: "web1", env: env.split(","), missing: ["api_key"] });
    expect(await revision()).toBe(before);
    expect(JSON.parse(ok(await cli(["manifest", "list", "--json"])))).toEqual({ manifests: [] });
  });

  test("validate before apply: exit 1, every required entry listed by id", async () => {
    const r = await cli(["manifest", "validate", manifestFile, ...bind]);
    expect(r.code).toBe(1);
    const ids = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.split(" ").slice(0, 2).join(" "));
    expect(ids).toEqual([
      "missing session",
      "missing hex_key",
      "missing b64",
      "missing b64url",
      "missing install_id",
      "missing api_key",
      "missing vault_token",
      "missing mounted",
      "missing db_root",
    ]);
    expect(r.stderr).toMatch(/^secretsctl: manifest web: 9 entries are missing or malformed: /);
    expect(r.stderr.split("\n")).toHaveLength(2);
  });

  test("apply generates every generator, fetches from a command and a file, says what is left", async () => {
    const before = await revision();
    const r = await cli(["manifest", "apply", manifestFile, ...bind]);
    const table = rows(ok(r).split("\n\n")[0] ?? "");
    expect(table.slice(1)).toContainEqual([
      "mounted",
      "remote_fetch",
      "web.mounted@group:prod",
      "fetch",
      "configured",
    ]);
    expect(table.slice(1)).toContainEqual([
      "api_key",
      "user_prompt",
      "web.api_key@group:prod",
      "provide",
      "missing",
    ]);
    expect(r.stderr).toContain("applied manifest web at revision");
    expect(r.stderr).toContain("11 generated, 0 regenerated, 2 fetched");
    expect(r.stderr).toContain("not ready: api_key (missing)\n");
    expect(r.stderr).toContain("run secretsctl manifest prompt web\n");
    expect(await revision()).toBeGreaterThan(before);

    const shapes: [string, RegExp][] = [
      ["session", /^[A-Za-z0-9]{32}$/],
      ["hex_key", /^[0-9a-f]{16}$/],
      ["b64", /^[A-Za-z0-9+/]{24}$/],
      ["b64url", /^[A-Za-z0-9_-]{20}$/],
      ["install_id", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/],
    ];
    const values = await Promise.all(
      shapes.map(([id]) => Promise.all([getValue(`web.${id}.web1`), getValue(`web.${id}.web2`)])),
    );
    shapes.forEach(([id, shape], i) => {
      const [v1, v2] = values[i] ?? [];
      expect(v1).toMatch(shape);
      expect(v2).toMatch(shape);
      expect(v1, `${id} differs per VM`).not.toBe(v2);
    });
    const [infra, fetchedByCommand, fetchedFile] = await Promise.all([
      getValue("web.db_root"),
      getValue("web.vault_token"),
      getValue("web.mounted"),
    ]);
    expect(infra).toMatch(/^[A-Za-z0-9_-]{40}$/);
    expect(fetchedByCommand).toBe(fromCommand);
    expect(fetchedFile).toBe(fromFile);

    // The host-only entry is in no VM's env.
    const env = JSON.parse(ok(await cli(["export", "web1", "--format", "json"]))) as Record<
      string,
      string
    >;
    for (const v of Object.values(env)) use(v);
    expect(Object.keys(env).sort()).toEqual([
      "B64URL_KEY",
      "B64_KEY",
      "HEX_KEY",
      "INSTALL_ID",
      "MOUNTED_TOKEN",
      "SESSION_SECRET",
      "VAULT_TOKEN",
    ]);
  });

  test("apply again keeps every value; --regenerate makes new ones for that entry only", async () => {
    const session = await getValue("web.session.web1");
    const hex = await getValue("web.hex_key.web1");
    const again = await cli(["manifest", "apply", manifestFile, ...bind, "--json"]);
    const j = JSON.parse(ok(again)) as { entries: { id: string; action: string }[] };
    expect(new Set(j.entries.map((e) => `${e.id}:${e.action}`))).toContain("session:keep");
    expect(j.entries.filter((e) => e.action !== "keep").map((e) => e.action)).toEqual([
      "provide",
      "provide",
    ]);
    expect(await getValue("web.session.web1")).toBe(session);
    const re = await cli(["manifest", "apply", manifestFile, ...bind, "--regenerate", "session"]);
    expect(ok(re)).toContain("regenerate");
    expect(re.stderr).toContain("0 generated, 2 regenerated, 0 fetched");
    const fresh = await getValue("web.session.web1");
    expect(fresh).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(fresh).not.toBe(session);
    expect(await getValue("web.hex_key.web1")).toBe(hex);
    failed(
      await cli(["manifest", "plan", manifestFile, ...bind, "--regenerate", "api_key"]),
      1,
      "regenerate",
    );
  });

  test("validate after apply: exit 1 naming the user_prompt entry; vm list says incomplete", async () => {
    const r = await cli(["manifest", "validate", manifestFile, ...bind]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("missing api_key (user_prompt, API_KEY; group:prod)\n");
    expect(r.stderr).toBe("secretsctl: manifest web: 1 entry is missing or malformed: api_key\n");
    const table = rows(ok(await cli(["vm", "list"])));
    expect(table[0]).toContain("COMPLETE");
    const col = table[0]?.indexOf("COMPLETE") ?? -1;
    const byName = new Map(table.slice(1).map((row) => [row[0], row[col]]));
    expect(byName.get("web1")).toBe("no: web/api_key");
    expect(byName.get("web2")).toBe("no: web/api_key");
    expect(byName.get("solo")).toBe("yes");
    const j = await vms();
    expect(j.get("web1")?.missingRequired).toEqual(["web/api_key"]);
    expect(j.get("solo")?.missingRequired).toEqual([]);
  });

  test("template: the user_prompt entries, as env and as json", async () => {
    const env = ok(await cli(["manifest", "template", manifestFile]));
    expect(env).toBe(
      [
        "# user_prompt entries of manifest web: fill in the values, then run",
        "#   secretsctl manifest prompt web --from THIS_FILE",
        "# (an empty value is left as it is)",
        "",
        `# Billing API key — from the billing console (format: ${API_FORMAT}) [required]`,
        "API_KEY=",
        "",
        "# nickname — optional [optional]",
        "NICKNAME=",
        "",
      ].join("\n"),
    );
    const json = JSON.parse(
      ok(await cli(["manifest", "template", manifestFile, "--format", "json"])),
    );
    expect(json).toEqual({
      api_key: "",
      nickname: "",
      _descriptions: {
        api_key: {
          label: "Billing API key",
          description: "from the billing console",
          env: "API_KEY",
          format: API_FORMAT,
          required: true,
        },
        nickname: {
          label: "nickname",
          description: "optional",
          env: "NICKNAME",
          format: "",
          required: false,
        },
      },
      _manifest: "web",
    });
    failed(await cli(["manifest", "template", manifestFile, "--format", "yaml"]), 2, "env or json");
  });

  test("prompt without a terminal: one line per entry; a value off the format stores nothing", async () => {
    const bad = use("not-the-format-at-all-0123");
    const r = await cli(["manifest", "prompt", "web", "--id", "api_key"], { stdin: `${bad}\n` });
    failed(r, 1, "api_key: the value does not match the format");
    const lines = await cli(["manifest", "prompt", "web"], { stdin: "a\nb\nc\n" });
    failed(lines, 1, "in this order: api_key, nickname");
    failed(
      await cli(["manifest", "prompt", "web", "--id", "session"]),
      1,
      "secretsd makes its value",
    );
    failed(await cli(["manifest", "prompt", "web", "--id", "nope"]), 1, "no entry 'nope'");
    failed(await cli(["get", "web.api_key"]), 3, "web.api_key");
  });
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

describe.skipIf(!hasScript)("manifest prompt on a terminal (util-linux script)", () => {
  test("asks without echo, refuses a value off the format, asks again, stores the good one", async () => {
    const bad = use("sk-UPPER-CASE-IS-OFF-FORMAT");
    const good = value("sk");
    expect(good).toMatch(new RegExp(`^(?:${API_FORMAT})$`, "u"));
    const nick = value("nick");
    const r = await inPty(["manifest", "prompt", "web"], [bad, good, nick]);
    expect(r.code, r.transcript).toBe(0);
    const prompt = "Billing API key (from the billing console) (input hidden): ";
    expect(r.transcript.split(prompt)).toHaveLength(3);
    expect(r.transcript).toContain(
      `secretsctl: api_key: the value does not match the format ${API_FORMAT}; try again (2 of 3)`,
    );
    expect(r.transcript).toContain("nickname (optional) (input hidden): ");
    expect(r.transcript).toContain("provided api_key: web.api_key version 1");
    expect(r.transcript).toContain("provided nickname: web.nickname version 1");
    for (const v of [bad, good, nick]) expect(r.transcript).not.toContain(v);
    expect(await getValue("web.api_key")).toBe(good);
    expect(await getValue("web.nickname")).toBe(nick);
  });

  test("three values off the format: exit 1, nothing stored", async () => {
    const bad = ["x1-off-format-aaaa", "x2-off-format-bbbb", "x3-off-format-cccc"].map((v) =>
      use(v),
    );
    const r = await inPty(["manifest", "prompt", "web", "--id", "api_key"], bad);
    expect(r.code).toBe(1);
    expect(r.transcript).toContain("(3 attempts); nothing was stored for it");
    for (const v of bad) expect(r.transcript).not.toContain(v);
    const versions = JSON.parse(ok(await cli(["versions", "web.api_key", "--json"]))) as {
      versions: unknown[];
    };
    expect(versions.versions).toHaveLength(1);
  });
});

describe.skipIf(!hasScript)("once provided", () => {
  test("validate passes; vm list says complete; status names state and source", async () => {
    expect(ok(await cli(["manifest", "validate", manifestFile, ...bind]))).toBe("ok\n");
    const j = await vms();
    expect(j.get("web1")?.missingRequired).toEqual([]);
    expect(j.get("web2")?.missingRequired).toEqual([]);
    const table = rows(ok(await cli(["manifest", "status", "web"])));
    expect(table[0]).toEqual(["MANIFEST", "VM", "ID", "CLASS", "ENV", "STATE", "SOURCE", "ERROR"]);
    const body = table.slice(1);
    expect(body).toContainEqual([
      "web",
      "web1",
      "api_key",
      "user_prompt",
      "API_KEY",
      "configured",
      "provided",
      "-",
    ]);
    expect(body).toContainEqual([
      "web",
      "web2",
      "session",
      "per_install_generated",
      "SESSION_SECRET",
      "configured",
      "generated",
      "-",
    ]);
    expect(body).toContainEqual([
      "web",
      "web1",
      "vault_token",
      "remote_fetch",
      "VAULT_TOKEN",
      "configured",
      "fetched",
      "-",
    ]);
    expect(body).toContainEqual([
      "web",
      "(host)",
      "db_root",
      "infrastructure",
      "-",
      "configured",
      "generated",
      "-",
    ]);
    const only = JSON.parse(
      ok(await cli(["manifest", "status", "web", "--vm", "web2", "--json"])),
    ) as { entries: Record<string, unknown>[] };
    // web2's rows, and the host-only entry's (vm "").
    expect(new Set(only.entries.map((e) => e.vm))).toEqual(new Set(["web2", ""]));
    expect(only.entries.find((e) => e.id === "mounted")).toEqual({
      manifest: "web",
      vm: "web2",
      id: "mounted",
      class: "remote_fetch",
      env: "MOUNTED_TOKEN",
      state: "configured",
      source: "fetched",
      required: true,
      secret: "web.mounted",
      error: "",
    });
    expect(ok(await cli(["manifest", "prompt", "web"]))).toBe(
      "nothing to provide: every user_prompt entry of web is configured\n",
    );
  });
});

describe("a manifest bound to one VM", () => {
  test("prompt --from a filled-in template; list, show, remove, remove --delete-secrets", async () => {
    const file = join(suite.work, "solo.json");
    await writeFile(
      file,
      JSON.stringify({
        name: "solo",
        entries: [
          { id: "token", class: "user_prompt", env: "SOLO_TOKEN", format: "[a-z0-9-]+" },
          {
            id: "seed",
            class: "per_install_generated",
            env: "SOLO_SEED",
            generator: { type: "uuid" },
          },
        ],
      }),
    );
    ok(await cli(["manifest", "apply", file, "--vm", "solo"]));
    expect((await vms()).get("solo")?.missingRequired).toEqual(["solo/token"]);
    use(await getValue("solo.seed.solo"));

    const filled = join(suite.work, "solo.env");
    const token = value("solo-token");
    const template = ok(await cli(["manifest", "template", file]));
    await writeFile(filled, template.replace("SOLO_TOKEN=", `SOLO_TOKEN=${token}`), {
      mode: 0o600,
    });
    expect(ok(await cli(["manifest", "prompt", "solo", "--from", filled]))).toBe(
      "provided token: solo.token version 1\n",
    );
    expect(await getValue("solo.token")).toBe(token);
    expect((await vms()).get("solo")?.missingRequired).toEqual([]);

    const [listed, shownRun, shownJson] = await Promise.all([
      cli(["manifest", "list"]),
      cli(["manifest", "show", "solo"]),
      cli(["manifest", "show", "solo", "--json"]),
    ]);
    const list = rows(ok(listed));
    expect(list[0]).toEqual(["NAME", "BIND", "ENTRIES", "UPDATED", "DESCRIPTION"]);
    expect(list.slice(1).map((row) => row.slice(0, 3))).toEqual([
      ["solo", "vm:solo", "2"],
      ["web", "group:prod", "10"],
    ]);
    const shown = ok(shownRun);
    expect(shown).toMatch(/^name: solo\nbind: vm:solo\nentries: 2\n/);
    const doc = JSON.parse(shown.slice(shown.indexOf("\n{") + 1)) as {
      entries: { id: string }[];
    };
    expect(doc.entries.map((e) => e.id)).toEqual(["token", "seed"]);
    const showJson = JSON.parse(ok(shownJson)) as {
      manifest: { name: string; bind: string; entryCount: number };
      text: string;
    };
    expect(showJson.manifest).toMatchObject({ name: "solo", bind: "vm:solo", entryCount: 2 });

    // Remove keeps the secrets; --delete-secrets deletes them.
    expect(ok(await cli(["manifest", "remove", "web"]))).toBe(
      "removed manifest web\nits secrets stay (--delete-secrets deletes them)\n",
    );
    expect(await getValue("web.api_key")).toMatch(/^sk-/);
    const removed = JSON.parse(
      ok(await cli(["manifest", "remove", "solo", "--delete-secrets", "--json"])),
    ) as { deletedSecrets: string[] };
    expect(removed.deletedSecrets).toEqual(["solo.seed.solo", "solo.token"]);
    failed(await cli(["get", "solo.token"]), 3, "solo.token");
    expect(JSON.parse(ok(await cli(["manifest", "list", "--json"])))).toEqual({ manifests: [] });
    failed(await cli(["manifest", "show", "web"]), 3, "web");
    // About 15 runs of the CLI, some in a row: room for a loaded 2-core machine.
  }, 60_000);
});

// --- internal ---

/** Shell quoting for `script -c`. */
function quote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * Runs secretsctl on a real pseudo-terminal (util-linux `script`), typing the next answer and
 * Enter each time a hidden prompt shows. The transcript is everything the terminal showed.
 */
function inPty(
  args: string[],
  answers: string[],
): Promise<{ code: number | null; transcript: string }> {
  const cmd = [process.execPath, SECRETSCTL, ...args].map(quote).join(" ");
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: suite.work,
      VM_AUTH_HOME: suite.d.dataDir,
      NO_COLOR: "1",
      TERM: "dumb",
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let transcript = "";
  let typed = 0;
  const onOutput = (b: Buffer) => {
    transcript += b.toString("utf8");
    const shown = transcript.split("(input hidden): ").length - 1;
    while (typed < shown) {
      const answer = answers[typed++];
      if (answer !== undefined) child.stdin.write(`${answer}\r`);
    }
  };
  child.stdout.on("data", onOutput);
  child.stderr.on("data", onOutput);
  // A prompt that never shows must not leave `script` behind the test's own timeout.
  const stuck = setTimeout(() => child.kill("SIGKILL"), 12_000);
  return new Promise((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(stuck);
      child.stdin.destroy();
      res({ code, transcript });
    });
  });
}
