/**
 * createClient: a promise API over secretsd's gRPC services, for the CLI, the shim and any
 * Node program. Unary methods return promises; server-streaming methods return async
 * iterables that end the call when the loop is left. Every call carries a deadline
 * (default 5 s; none for streams) and, over TCP, the bearer token.
 */

import { readFileSync } from "node:fs";
import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { ChannelOptions, ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { methodDefinition } from "../proto/adapter.js";
import { Health } from "../proto/gen/grpc/health/v1/health_pb.js";
import { AccessService } from "../proto/gen/vmauth/v1/access_pb.js";
import { EnvService } from "../proto/gen/vmauth/v1/env_pb.js";
import { ManifestService } from "../proto/gen/vmauth/v1/manifest_pb.js";
import { OAuthService } from "../proto/gen/vmauth/v1/oauth_pb.js";
import { SecretService } from "../proto/gen/vmauth/v1/secrets_pb.js";
import { SystemService } from "../proto/gen/vmauth/v1/system_pb.js";
import { fromServiceError } from "./errors.js";

export { ClientError, isClientError } from "./errors.js";

export interface ClientOptions {
  /** Unix socket path (local admin). One of socket or server is required. */
  socket?: string | undefined;
  /** host:port over TCP. */
  server?: string | undefined;
  /** Bearer token for TCP (admin `vmadm_…` or VM `vmat_…`). */
  token?: string | undefined;
  /** TLS for TCP: true for the system CAs, or a PEM CA file path. @default false */
  tls?: boolean | string | undefined;
  /** Deadline of unary calls. @default 5000 */
  deadlineMs?: number | undefined;
  /** Extra grpc-js channel options (keepalive, ...). */
  channelOptions?: ChannelOptions | undefined;
}

export interface CallOptions {
  signal?: AbortSignal;
  deadlineMs?: number;
}

type Method<M> = M extends { methodKind: "unary"; input: infer I; output: infer O }
  ? I extends DescMessage
    ? O extends DescMessage
      ? (req?: MessageInitShape<I>, opts?: CallOptions) => Promise<MessageShape<O>>
      : never
    : never
  : M extends { methodKind: "server_streaming"; input: infer I; output: infer O }
    ? I extends DescMessage
      ? O extends DescMessage
        ? (req?: MessageInitShape<I>, opts?: CallOptions) => AsyncIterable<MessageShape<O>>
        : never
      : never
    : never;

/** A promise client for one generated service. */
export type PromiseClient<S> =
  S extends GenService<infer R extends GenServiceMethods>
    ? { [K in keyof R]: Method<R[K]> }
    : never;

export interface VmAuthClient {
  secrets: PromiseClient<typeof SecretService>;
  env: PromiseClient<typeof EnvService>;
  access: PromiseClient<typeof AccessService>;
  system: PromiseClient<typeof SystemService>;
  oauth: PromiseClient<typeof OAuthService>;
  manifests: PromiseClient<typeof ManifestService>;
  health: PromiseClient<typeof Health>;
  /** Where this client connects, for messages. */
  readonly target: string;
  close(): void;
}

/** Connects lazily: the first call opens the channel. */
export function createClient(opts: ClientOptions): VmAuthClient {
  const target = opts.socket ? `unix://${opts.socket}` : opts.server;
  if (!target) throw new Error("createClient: socket or server is required");
  const creds =
    opts.tls && !opts.socket
      ? credentials.createSsl(typeof opts.tls === "string" ? readFileSync(opts.tls) : null)
      : credentials.createInsecure();
  const channel = new Client(target, creds, {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    ...opts.channelOptions,
  });
  const metadata = () => {
    const md = new Metadata();
    if (opts.token && !opts.socket) md.set("authorization", `Bearer ${opts.token}`);
    return md;
  };
  const deadlineMs = opts.deadlineMs ?? 5000;
  const bind = <S extends DescService>(svc: S) =>
    promiseClient(svc, channel, metadata, deadlineMs) as PromiseClient<S>;
  return {
    secrets: bind(SecretService),
    env: bind(EnvService),
    access: bind(AccessService),
    system: bind(SystemService),
    oauth: bind(OAuthService),
    manifests: bind(ManifestService),
    health: bind(Health),
    target: opts.socket ?? target,
    close: () => channel.close(),
  };
}

// --- internal ---

function promiseClient(
  svc: DescService,
  channel: Client,
  metadata: () => Metadata,
  deadlineMs: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const method of svc.methods) {
    const def = methodDefinition(method);
    if (method.methodKind === "unary") {
      out[method.localName] = (req: MessageInitShape<DescMessage> = {}, o: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const call = channel.makeUnaryRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            create(method.input, req),
            metadata(),
            { deadline: Date.now() + (o.deadlineMs ?? deadlineMs) },
            (err: ServiceError | null, res?: unknown) =>
              err ? reject(fromServiceError(err)) : resolve(res),
          );
          o.signal?.addEventListener("abort", () => call.cancel(), { once: true });
        });
    } else if (method.methodKind === "server_streaming") {
      out[method.localName] = (req: MessageInitShape<DescMessage> = {}, o: CallOptions = {}) => {
        const call = channel.makeServerStreamRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          create(method.input, req),
          metadata(),
          o.deadlineMs ? { deadline: Date.now() + o.deadlineMs } : {},
        );
        o.signal?.addEventListener("abort", () => call.cancel(), { once: true });
        return iterate(call);
      };
    }
  }
  return out;
}

async function* iterate(call: ClientReadableStream<unknown>): AsyncGenerator<unknown> {
  try {
    for await (const msg of call) yield msg;
  } catch (err) {
    throw isServiceError(err) ? fromServiceError(err) : err;
  } finally {
    call.cancel();
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === "number";
}
