/**
 * Request/reply over Node's IPC channel between the coordinator and its worker processes.
 * Workers may also push unsolicited messages (no id) that the coordinator ignores.
 */
import type { ChildProcess } from "node:child_process";

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** The coordinator's end of a worker. */
export class Peer {
  private seq = 0;
  private readonly waiting = new Map<
    number,
    { resolve(v: unknown): void; reject(e: Error): void }
  >();

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on("message", (m: Reply) => {
      if (typeof m?.id !== "number") return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    child.on("exit", (code, sig) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code ?? sig})`));
      this.waiting.clear();
    });
  }

  request<T>(msg: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${String(msg.type)} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...msg, id });
    });
  }
}

type Handler = (msg: Record<string, unknown>) => unknown;

/** A worker's end: dispatches requests by `type` and replies once each resolves. */
export function serve(handlers: Record<string, Handler>): void {
  process.on("message", (m: Record<string, unknown> & { id: number; type: string }) => {
    const h = handlers[m.type];
    const reply = (r: Omit<Reply, "id">) => process.send?.({ id: m.id, ...r });
    if (!h) {
      reply({ ok: false, error: `unknown request ${m.type}` });
      return;
    }
    Promise.resolve()
      .then(() => h(m))
      .then(
        (value) => reply({ ok: true, value }),
        (err: unknown) =>
          reply({
            ok: false,
            error: (err instanceof Error ? err.stack : undefined) ?? String(err),
          }),
      );
  });
  // The coordinator going away ends the worker.
  process.on("disconnect", () => process.exit(0));
}
