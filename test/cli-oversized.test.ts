/**
 * An oversized value, by every way secretsctl reads one, fails with one clean line naming
 * `value` and the limit: never grpc-js's raw "Received message larger than max" (issue #8).
 * A request too large for any other reason, through the client library, names the sizes.
 */
import { describe, expect, test } from "vitest";
import { cliSuite, failed, listJson, use } from "./helpers/cli.js";

const suite = cliSuite("secretsctl-oversized-");

// 1 MiB of stdin: the CLI reads it all (it refuses more), and with the name and framing the
// request is just over the server's 1 MiB receive limit.
const MiB = 1024 * 1024;
const huge = () => use(`sk-oversized-${"x".repeat(MiB - 13)}`);

describe("oversized values", () => {
  test.each([
    ["add from stdin", ["add", "big", "-"]],
    ["rotate from stdin", ["rotate", "small", "-"]],
  ])("%s: 'value: is N bytes; the limit is 65536'", async (_l, args) => {
    const { cli } = suite;
    if (args[0] === "rotate") await cli(["add", "small", use("sk-small-value-0123456789")]);
    const r = await cli(args, { stdin: huge() });
    const msg = failed(r, 1, /^secretsctl: value: is 1048576 bytes; the limit is 65536$/);
    expect(msg).not.toContain("Received message");
    expect((await listJson(cli)).map((s) => s.name)).not.toContain("big");
  });

  test("a request over the server's receive limit through the client library", async () => {
    const { d } = suite;
    const err = await d.client.secrets
      .createSecret({ name: "big2", value: use(`sk-${"y".repeat(2 * MiB)}`) })
      .then(
        () => undefined,
        (e: unknown) => e as { code: string; field: string; message: string },
      );
    expect(err).toMatchObject({ code: "resource_exhausted", field: "request" });
    expect(err?.message).toMatch(/^request: \d+ bytes is more than secretsd accepts \(1048576\)$/);
  });
});
