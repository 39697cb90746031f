/**
 * A scripted HTTP server for this folder's unit tests (not used by the library): it records
 * every request and answers with the current handler, to produce what a real provider rarely
 * does on demand (GitHub's form-encoded and 200-with-error answers, oversized bodies,
 * redirects, 503 with Retry-After, silence). Real-provider tests: test/oauth-protocol.test.ts.
 */
import { createServer, type ServerResponse } from "node:http";
import { isOAuthError, type OAuthError } from "./errors.js";

/** A request as the server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Answers one request; may leave `res` open to simulate a hang. */
export type ScriptedHandler = (req: RecordedRequest, res: ServerResponse) => void;

/** A running scripted server on 127.0.0.1:0. */
export interface ScriptedServer {
  /** http://127.0.0.1:PORT */
  url: string;
  requests: RecordedRequest[];
  /** Sets the handler for the following requests. */
  answer(handler: ScriptedHandler): void;
  close(): Promise<void>;
}

/** Starts a server that answers 404 until told otherwise. */
export async function startScriptedServer(): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  let handler: ScriptedHandler = (_req, res) => reply(res, 404, "");
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const recorded = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(recorded);
      handler(recorded, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    answer: (h) => {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Sends `body` (an object is sent as JSON) with `status` and extra headers. */
export function reply(
  res: ServerResponse,
  status: number,
  body: string | object,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const type = typeof body === "string" ? "text/plain" : "application/json";
  res.writeHead(status, { "content-type": type, ...headers }).end(text);
}

/** The OAuthError `p` rejects with; throws if it resolves or rejects with anything else. */
export async function oauthFailure(p: Promise<unknown>): Promise<OAuthError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOAuthError(err)) throw new Error(`expected an OAuthError, got ${String(err)}`);
  return err;
}
