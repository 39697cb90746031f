/**
 * The adapter over real grpc-js (server and client in this process): a handler that rejects,
 * with our error or any other, answers once, with the right status, and never with the
 * rejected error's own message unless it is one of ours.
 */

import { create } from "@bufbuild/protobuf";
import type { ServerUnaryCall, ServiceError, sendUnaryData } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SystemService } from "../../proto/gen/vmauth/v1/system_pb.js";
import { SecretsError } from "../errors.js";
import { createLogger } from "../logger.js";
import { bindService } from "./adapter.js";
import { serveForTest } from "./serve-for-test.js";

const LEAK = "sk-adapter-test-never-shown";
const answers: Record<string, number> = {};
const finished: string[] = [];
let served: Awaited<ReturnType<typeof serveForTest>>;
let client: Awaited<ReturnType<typeof serveForTest>>["client"];

beforeAll(async () => {
  const { definition, handlers } = bindService(
    SystemService,
    {
      async getStatus() {
        throw new Error(`unexpected failure holding ${LEAK}`);
      },
      async rotateMasterKey() {
        throw new SecretsError("not_found", "name: secret 'x' not found", { field: "name" });
      },
      async listAuditEvents() {
        await new Promise((r) => setTimeout(r, 5));
        return { events: [] };
      },
    },
    {
      authenticate: () => ({ kind: "local" }),
      onFinish: ({ method, result }) => finished.push(`${method.name}:${result}`),
      shutdown: new AbortController().signal,
      log: createLogger({ level: "silent" }),
    },
  );
  // Count every answer the adapter gives, whatever grpc-js would make of a second one.
  for (const [name, h] of Object.entries(handlers)) {
    const inner = h as (
      call: ServerUnaryCall<unknown, unknown>,
      cb: sendUnaryData<unknown>,
    ) => void;
    handlers[name] = (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) =>
      inner(call, (...args) => {
        answers[name] = (answers[name] ?? 0) + 1;
        cb(...args);
      });
  }
  served = await serveForTest(definition, handlers, "SystemService");
  client = served.client;
});

afterAll(() => served.close());

type UnaryFn = (
  req: unknown,
  md: Metadata,
  cb: (err: ServiceError | null, res: unknown) => void,
) => void;

const call = (method: "getStatus" | "rotateMasterKey" | "listAuditEvents") =>
  new Promise<{ err: ServiceError | null; res: unknown }>((resolve) => {
    const fn = (client as unknown as Record<string, UnaryFn>)[method] as UnaryFn;
    const req = create(SystemService.method[method].input, {});
    fn.call(client, req, new Metadata(), (err, res) => resolve({ err, res }));
  });

describe("grpc-js adapter", () => {
  test("a handler rejecting with any error answers INTERNAL once, without its message", async () => {
    const { err } = await call("getStatus");
    expect(err?.code).toBe(status.INTERNAL);
    expect(err?.details).not.toContain(LEAK);
    expect(err?.metadata.get("x-request-id")[0]).toBeTruthy();
    await new Promise((r) => setTimeout(r, 50));
    expect(answers.getStatus).toBe(1);
    expect(finished).toContain("GetStatus:internal");
  });

  test("a handler rejecting with a SecretsError answers its status, naming the field", async () => {
    const { err } = await call("rotateMasterKey");
    expect(err?.code).toBe(status.NOT_FOUND);
    expect(err?.details).toBe("name: secret 'x' not found");
    expect(err?.metadata.get("x-field")).toEqual(["name"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(answers.rotateMasterKey).toBe(1);
  });

  test("a handler that resolves later answers OK once", async () => {
    const { err, res } = await call("listAuditEvents");
    expect(err).toBeNull();
    expect(res).toBeDefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(answers.listAuditEvents).toBe(1);
    expect(finished).toContain("ListAuditEvents:ok");
  });
});
