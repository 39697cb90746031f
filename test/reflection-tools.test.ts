/**
 * Stock gRPC tools against a real secretsd, through reflection only (issue #12): the buf CLI
 * from node_modules lists every method of every service in the generated descriptors over
 * both reflect protocols (v1, v1alpha), over TCP and the unix socket, and calls a unary
 * method with a VM token over TCP, over the socket, and over TLS with --cacert. One listed
 * service whose file the server cannot serve fails `--list-methods` as a whole, which is
 * how the v1alpha gap was found: so the expected list is read from proto/gen, not typed
 * here, and a new service or RPC is covered without editing this file.
 */
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { DescFile } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createClient } from "../client/index.js";
import { EnvService } from "../proto/gen/vmauth/v1/env_pb.js";
import { reflectionHandlers } from "../server/transport/handlers/reflection.js";
import type { DaemonProcess } from "./helpers/process.js";
import { spawnDaemon } from "./helpers/process.js";
import type { ReflectionVersion } from "./helpers/reflection.js";
import { filesViaReflection, listServicesViaReflection } from "./helpers/reflection.js";
import { spawnTlsDaemon } from "./helpers/tls.js";
import { secretValue, testRoot } from "./helpers/values.js";

const BUF = resolve(import.meta.dirname, "../node_modules/.bin/buf");
const GEN = resolve(import.meta.dirname, "../proto/gen");
const run = promisify(execFile);

/** `buf curl --protocol grpc ARGS…`; rejects with buf's stderr if it exits non-zero. */
async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", ...args], {
    timeout: 10_000,
    env: { ...process.env, BUF_CACHE_DIR: join(testRoot() ?? "/tmp", "buf-cache") },
  });
  return stdout;
}
const lines = (s: string) => s.split("\n").filter(Boolean).sort();

let p: DaemonProcess;
let tcp: string;
let socket: string;
let vmToken: string;
let value: string;
let files: DescFile[];

beforeAll(async () => {
  files = await generatedFiles();
  const root = testRoot() ?? "/tmp";
  p = await spawnDaemon(join(root, `reflection-tools-${process.pid}`), ["--listen", "127.0.0.1:0"]);
  tcp = p.tcp ?? "";
  socket = p.socket ?? "";
  const local = createClient({ socket });
  try {
    value = secretValue();
    await local.secrets.createSecret({ name: "openai", value });
    vmToken = (await local.access.createVm({ name: "web1" })).token;
  } finally {
    local.close();
  }
});
afterAll(async () => {
  p?.child.kill("SIGTERM");
  await p?.exited;
});

describe("reflection with stock tools", () => {
  test("proto/gen holds the API, health and both reflection services", () => {
    const names = files.flatMap((f) => f.services.map((s) => s.typeName));
    expect(names).toEqual(
      expect.arrayContaining([
        "vmauth.v1.SecretService",
        "vmauth.v1.EnvService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
  });

  test("a listed service whose file is not served fails at construction, not in a tool", () => {
    expect(() => reflectionHandlers([EnvService.file], ["vmauth.v1.SystemService"])).toThrow(
      "reflection: listed service vmauth.v1.SystemService is in no served file",
    );
    // The reflection services' own files are always served: both may be listed.
    expect(() =>
      reflectionHandlers(
        [EnvService.file],
        [
          EnvService.typeName,
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ],
      ),
    ).not.toThrow();
  });

  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    test(`buf curl --list-services/--list-methods over ${protocol}, TCP and socket: every generated method`, {
      timeout: 30_000,
    }, async () => {
      const services = files.flatMap((f) => f.services);
      const methods = services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
      for (const where of [[`http://${tcp}`], ["--unix-socket", socket, "http://localhost"]]) {
        const common = ["--http2-prior-knowledge", "--reflect-protocol", protocol, ...where];
        expect(lines(await bufCurl("--list-services", ...common))).toEqual(
          services.map((s) => s.typeName).sort(),
        );
        expect(lines(await bufCurl("--list-methods", ...common))).toEqual(methods.sort());
      }
    });
  }

  test("buf curl calls GetEnv over TCP with a VM token, through reflection", async () => {
    const out = await bufCurl(
      "--http2-prior-knowledge",
      "--reflect-protocol",
      "grpc-v1alpha",
      "-H",
      `authorization: Bearer ${vmToken}`,
      `http://${tcp}/vmauth.v1.EnvService/GetEnv`,
    );
    const env = JSON.parse(out) as {
      snapshot: { vm: string; vars: { name: string; value: string; secret: string }[] };
    };
    expect(env.snapshot.vm).toBe("web1");
    expect(env.snapshot.vars).toEqual([
      expect.objectContaining({ name: "OPENAI_API_KEY", secret: "openai", value }),
    ]);
  });

  test("buf curl calls GetStatus over the unix socket as the local admin", async () => {
    const out = await bufCurl(
      "--http2-prior-knowledge",
      "--unix-socket",
      socket,
      "http://localhost/vmauth.v1.SystemService/GetStatus",
    );
    expect(JSON.parse(out)).toMatchObject({ version: expect.any(String), caller: "local" });
  });

  test("buf curl refuses what the server refuses: a VM token may not call GetStatus", async () => {
    const failed = bufCurl(
      "--http2-prior-knowledge",
      "-H",
      `authorization: Bearer ${vmToken}`,
      `http://${tcp}/vmauth.v1.SystemService/GetStatus`,
    );
    await expect(failed).rejects.toMatchObject({
      stderr: expect.stringContaining('"code": "permission_denied"'),
    });
  });

  test("buf curl over TLS with --cacert lists the API and calls Health/Check", {
    timeout: 30_000,
  }, async () => {
    const { dir, p: t } = await spawnTlsDaemon("vm-auth-reflection-tls-");
    try {
      const url = `https://${t.tcp ?? ""}`;
      const cacert = join(dir, "cert.pem");
      expect(lines(await bufCurl("--cacert", cacert, "--list-services", url))).toContain(
        "vmauth.v1.EnvService",
      );
      const out = await bufCurl(
        "--cacert",
        cacert,
        "-d",
        '{"service": "vmauth.v1.EnvService"}',
        `${url}/grpc.health.v1.Health/Check`,
      );
      expect(JSON.parse(out)).toEqual({ status: "SERVING" });
    } finally {
      t.child.kill("SIGTERM");
      await t.exited;
    }
  });

  for (const version of ["v1", "v1alpha"] as ReflectionVersion[]) {
    test(`${version}: every listed service, its methods' types and every file it imports resolve`, async () => {
      const listed = await listServicesViaReflection(tcp, version);
      const byFile = new Map<string, number>();
      for (const name of listed) {
        const got = await filesViaReflection(tcp, { fileContainingSymbol: name }, version);
        if (!Array.isArray(got)) throw new Error(`${name}: ${got.errorMessage}`);
        const [first, ...deps] = got;
        expect(first?.service.map((s) => `${first.package}.${s.name}`)).toContain(name);
        // The file comes with its transitive imports, each once.
        const names = got.map((f) => f.name);
        expect(new Set(names).size).toBe(names.length);
        for (const d of first?.dependency ?? []) expect(deps.map((f) => f.name)).toContain(d);
        for (const f of got) byFile.set(f.name, f.messageType.length);
      }
      expect([...byFile.keys()]).toContain("google/protobuf/timestamp.proto");
      // Every file met is also served by name (tools ask again by filename for imports).
      for (const name of byFile.keys()) {
        const got = await filesViaReflection(tcp, { fileByFilename: name }, version);
        if (!Array.isArray(got)) throw new Error(`${name}: ${got.errorMessage}`);
        expect(got[0]?.name).toBe(name);
      }
      // A method and a nested symbol resolve to their file.
      const m = await filesViaReflection(
        tcp,
        { fileContainingSymbol: "vmauth.v1.EnvService.GetEnv" },
        version,
      );
      expect(Array.isArray(m) && m[0]?.name).toBe("vmauth/v1/env.proto");
      expect(
        await filesViaReflection(tcp, { fileContainingSymbol: "vmauth.v1.NoSuchThing" }, version),
      ).toEqual({ errorCode: 5, errorMessage: "symbol vmauth.v1.NoSuchThing not found" });
      expect(
        await filesViaReflection(tcp, { fileByFilename: "vmauth/v1/nope.proto" }, version),
      ).toEqual({ errorCode: 5, errorMessage: "file vmauth/v1/nope.proto not found" });
    });
  }
});

// --- internal ---

/** Every generated file under proto/gen, read from the modules themselves. */
async function generatedFiles(): Promise<DescFile[]> {
  const paths = (await readdir(GEN, { recursive: true })).filter((f) => f.endsWith("_pb.ts"));
  const out: DescFile[] = [];
  for (const path of paths.sort()) {
    const mod = (await import(join(GEN, path))) as Record<string, unknown>;
    for (const [k, v] of Object.entries(mod)) if (k.startsWith("file_")) out.push(v as DescFile);
  }
  return out;
}
