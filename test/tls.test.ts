import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createClient } from "../client/index.js";
import type { DaemonProcess } from "./helpers/process.js";
import { spawnTlsDaemon } from "./helpers/tls.js";
import { secretValue } from "./helpers/values.js";

let dir: string;
let p: DaemonProcess;
beforeAll(async () => {
  ({ dir, p } = await spawnTlsDaemon("vm-auth-tls-"));
});
afterAll(async () => {
  p.child.kill("SIGTERM");
  await p.exited;
});

test("TCP over TLS from cert/key files: a VM reads its env with the CA; plaintext fails", async () => {
  const local = createClient({ socket: join(dir, "data", "secretsd.sock") });
  const v = secretValue();
  await local.secrets.createSecret({ name: "openai", value: v });
  const { token } = await local.access.createVm({ name: "tls1" });
  local.close();
  const vm = createClient({ server: p.tcp ?? "", token, tls: join(dir, "cert.pem") });
  expect((await vm.env.getEnv({})).snapshot?.vars[0]?.value).toBe(v);
  vm.close();
  const plain = createClient({ server: p.tcp ?? "", token, deadlineMs: 1500 });
  await expect(plain.env.getEnv({})).rejects.toMatchObject({
    code: expect.stringMatching(/unavailable|deadline_exceeded/),
  });
  plain.close();
});
