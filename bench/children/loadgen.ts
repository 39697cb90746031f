/**
 * Unary load generator: `concurrency` calls always in flight on one grpc-js channel, for a
 * warm-up then a measured window. The same code drives secretsd's GetEnv and the bare echo:
 * the same request bytes, a fresh Metadata per call carrying the same bearer token, the same
 * 5 s deadline (as client/index.ts sets), identity deserialiser (no decode cost on either).
 */
import type { ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { serve } from "../lib/ipc.js";
import { nowMs } from "../lib/stats.js";

interface RunRequest {
  target: string;
  path: string;
  token: string;
  requestHex: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

export interface RunResult {
  calls: number;
  errors: number;
  firstError: string;
  windowMs: number;
  responseBytes: number;
  /** This process's CPU time (user+sys) during the window, ms. */
  cpuMs: number;
  /** Latency of every call that completed inside the window, ms (throughput = length / window). */
  latencies: number[];
}

serve({
  async run(m): Promise<RunResult> {
    const r = m as unknown as RunRequest;
    const client = new Client(r.target, credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
    const req = Buffer.from(r.requestHex, "hex");
    const id = (b: Buffer) => b;
    let responseBytes = 0;
    const call = () =>
      new Promise<void>((resolve, reject) => {
        const md = new Metadata();
        md.set("authorization", `Bearer ${r.token}`);
        client.makeUnaryRequest(
          r.path,
          id,
          id,
          req,
          md,
          { deadline: Date.now() + 5000 },
          (err: ServiceError | null, res?: Buffer) => {
            if (err) reject(err);
            else {
              responseBytes = res?.length ?? 0;
              resolve();
            }
          },
        );
      });
    await call();
    const start = nowMs() + r.warmupMs;
    const end = start + r.durationMs;
    const latencies: number[] = [];
    let cpuAtStart: NodeJS.CpuUsage | undefined;
    let errors = 0;
    let firstError = "";
    const worker = async () => {
      for (;;) {
        const t0 = nowMs();
        if (t0 >= end) return;
        if (t0 >= start && cpuAtStart === undefined) cpuAtStart = process.cpuUsage();
        try {
          await call();
        } catch (err) {
          errors++;
          firstError ||= (err as Error).message;
          if (errors > 1000) return;
        }
        const t1 = nowMs();
        if (t1 >= start && t1 <= end) latencies.push(t1 - t0);
      }
    };
    await Promise.all(Array.from({ length: r.concurrency }, worker));
    const cpu = process.cpuUsage(cpuAtStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    client.close();
    return {
      calls: latencies.length,
      errors,
      firstError,
      windowMs: r.durationMs,
      responseBytes,
      cpuMs,
      latencies,
    };
  },
});
