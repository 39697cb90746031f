/**
 * The gRPC servers. Two listeners with two policies: the unix socket (0600) is local admin
 * and needs no token; TCP needs a bearer token (exactly one `authorization` header), and a
 * VM token may call EnvService only, a user what its role allows (permissions.ts, one table
 * for every RPC). Health and reflection answer anyone, whatever token is sent: they never
 * look at it. Both servers share the same service handlers.
 *
 * TCP faces hostile clients (issue #8): failed authentications are throttled per peer and
 * reported in bounded volume (auth-failures.ts), connections must finish their handshake in
 * time and are closed when idle (connections.ts, `grpc.max_connection_idle_ms`), and every
 * request is decoded and bounds-checked before a handler sees it (request-check.ts).
 *
 * Over 250 lines because it is the one place both listeners' policies are set side by side
 * (auth, authorization, limits, audit of refusals); the mechanisms live in their own files.
 */

import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { chmod, unlink } from "node:fs/promises";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { Health } from "../../proto/gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../../proto/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AccessService } from "../../proto/gen/vmauth/v1/access_pb.js";
import { EnvService } from "../../proto/gen/vmauth/v1/env_pb.js";
import { ManifestService } from "../../proto/gen/vmauth/v1/manifest_pb.js";
import { OAuthService } from "../../proto/gen/vmauth/v1/oauth_pb.js";
import { SecretService } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { SystemService } from "../../proto/gen/vmauth/v1/system_pb.js";
import type { AuditBroker, AuditInput } from "../audit/audit.js";
import type { ServerConfig } from "../config.js";
import { isLoopback } from "../config.js";
import { permissionDenied, SecretsError, unauthenticated } from "../errors.js";
import type { Logger } from "../logger.js";
import type { AccessUseCases } from "../secrets/access.js";
import type { Caller } from "../secrets/caller.js";
import { actorOf } from "../secrets/caller.js";
import type { EnvUseCases } from "../secrets/env.js";
import type { ManifestUseCases } from "../secrets/manifest/manifests.js";
import type { OAuthUseCases } from "../secrets/oauth/oauth.js";
import { refusalFor } from "../secrets/permissions.js";
import type { RotationPlanner } from "../secrets/rotation-plan.js";
import type { SecretUseCases } from "../secrets/secrets.js";
import type { SystemUseCases } from "../secrets/system.js";
import type { UsageReporter } from "../secrets/usage.js";
import type { WatchHub } from "../secrets/watch.js";
import type { BindOptions, FinishInfo, ServiceImpl } from "./adapter.js";
import { bindService } from "./adapter.js";
import type { AuthFailureReport, AuthFailures } from "./auth-failures.js";
import { createAuthFailures } from "./auth-failures.js";
import { guardConnections } from "./connections.js";
import { GRPC_JS_VERSION, http2ServersOf } from "./grpc-internals.js";
import { accessHandlers } from "./handlers/access.js";
import { envHandlers } from "./handlers/env.js";
import { createHealth } from "./handlers/health.js";
import { manifestHandlers } from "./handlers/manifest.js";
import { oauthHandlers } from "./handlers/oauth.js";
import { reflectionHandlers } from "./handlers/reflection.js";
import { secretHandlers } from "./handlers/secrets.js";
import { systemHandlers } from "./handlers/system.js";
import { teamScopedSecrets, teamScopedSystem } from "./handlers/team-scope.js";
import { createTurnScheduler } from "./turns.js";

export interface TransportDeps {
  secrets: SecretUseCases;
  access: AccessUseCases;
  env: EnvUseCases;
  oauth: OAuthUseCases;
  manifests: ManifestUseCases;
  system: SystemUseCases;
  /** `rotate --plan`: which VMs and units a rotation would reach (issue #11). */
  rotationPlan: RotationPlanner;
  /** `secretsctl usage`: which VMs hold a secret and how it was read (issue #13). */
  usage: UsageReporter;
  hub: WatchHub;
  audit: AuditBroker;
  log: Logger;
  version: string;
  heartbeatMs: number;
}

export interface Transport {
  /** Binds the configured listeners; resolves with their addresses. */
  listen(config: ServerConfig): Promise<{ socket: string | null; tcp: string | null }>;
  setServing(serving: boolean): void;
  /** Stops accepting calls and waits for calls in flight, at most `graceMs`, then forces. */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * GetEnv work started per event-loop turn (turns.ts): two or three GetEnvs of a 20-variable
 * view. With 64 calls in flight from one client (npm run bench, 2 shared cores), the ratio
 * to bare grpc-js was 0.66–0.71 with no budget, 0.76 at 0.4 ms, 0.69 at 0.8 ms, and
 * 0.83–0.90 at 0.2 ms and 0.90 at 0.1 ms; 0.2 ms keeps the extra loop turns few.
 */
const GETENV_TURN_BUDGET_MS = 0.2;

const API: DescService[] = [
  SecretService,
  EnvService,
  AccessService,
  SystemService,
  OAuthService,
  ManifestService,
];
/**
 * What a VM token may call: its env, and the OAuth calls that act only on credentials in its
 * own view (a device login for one bound to it, a refresh); the use cases check which.
 */
const VM_METHODS = new Set<string>([
  ...EnvService.methods.map((m) => `${EnvService.typeName}/${m.name}`),
  `${OAuthService.typeName}/${OAuthService.method.startOAuthLogin.name}`,
  `${OAuthService.typeName}/${OAuthService.method.waitOAuthLogin.name}`,
  `${OAuthService.typeName}/${OAuthService.method.refreshOAuth.name}`,
]);
const PUBLIC = new Set([Health.typeName, ReflectionV1.typeName, ReflectionV1alpha.typeName]);
const ANONYMOUS: Caller = { kind: "anonymous" };

export function createTransport(deps: TransportDeps): Transport {
  // One scheduler for both listeners: they share the event loop (turns.ts).
  const turns = createTurnScheduler(GETENV_TURN_BUDGET_MS);
  const shutdownController = new AbortController();
  // Every call in flight listens on this signal; thousands of watch streams is normal.
  setMaxListeners(0, shutdownController.signal);
  const health = createHealth(API.map((s) => s.typeName));
  const files = [...API, Health, ReflectionV1].map((s) => s.file);
  const names = [...API, Health, ReflectionV1, ReflectionV1alpha].map((s) => s.typeName);
  const servers: { server: Server; socket?: string }[] = [];
  // Audit writes the transport started itself: shutdown waits for them (the audit device
  // closes right after). They record refused calls, which no lost entry can fail further.
  const writes = new Set<Promise<void>>();
  const auditRefusal = (entry: AuditInput) => {
    const p = deps.audit.record("refusal", entry).finally(() => writes.delete(p));
    writes.add(p);
  };
  // The TCP listener's failed-authentication state; made by listen() from the config.
  let failures: AuthFailures | undefined;

  const onFinish = (info: FinishInfo) => {
    const { method, caller, result } = info;
    if (result === "ok") return;
    // Authentication failed or was throttled: counted per peer, reported in bounded volume.
    const authResult = result === "unauthenticated" || result === "resource_exhausted";
    if (caller === undefined && authResult && failures) {
      const peer = failures.peerOf(info.peer());
      if (result === "resource_exhausted") failures.refusedWhileThrottled(peer);
      else {
        const reason = info.message ?? "";
        failures.failed(peer, { requestId: info.requestId, method: method.name, reason });
      }
      return;
    }
    // Use cases audit their own results; the transport records the calls it refused.
    if (result !== "unauthenticated" && result !== "permission_denied") return;
    if (info.refused) {
      deps.log.warn("call refused", {
        requestId: info.requestId,
        method: method.name,
        code: result,
      });
    }
    if (caller === undefined || !PUBLIC.has(method.parent.typeName)) {
      auditRefusal({
        requestId: info.requestId,
        actor: caller ? actorOf(caller) : "anonymous",
        action: `rpc.${method.name}`,
        result,
      });
    }
  };

  const build = (
    policy: Pick<BindOptions, "authenticate" | "authorize">,
    options: Record<string, number> = {},
  ) => {
    const server = new Server({ "grpc.max_receive_message_length": 1024 * 1024, ...options });
    const opts: BindOptions = {
      ...policy,
      onFinish,
      shutdown: shutdownController.signal,
      log: deps.log,
    };
    const add = <S extends DescService>(svc: S, impl: Parameters<typeof bindService<S>>[1]) => {
      const { definition, handlers } = bindService(svc, impl, opts);
      server.addService(definition, handlers);
    };
    // Team members reach only their teams' secrets and audit lines (team-scope.ts).
    add(
      SecretService,
      teamScopedSecrets(secretHandlers(deps.secrets, deps.rotationPlan, deps.usage), deps.access),
    );
    add(EnvService, envHandlers(deps.env, deps.hub, deps.heartbeatMs, turns));
    add(AccessService, accessHandlers(deps.access, deps.hub.presence, deps.manifests.missing));
    add(OAuthService, oauthHandlers(deps.oauth));
    add(ManifestService, manifestHandlers(deps.manifests));
    add(
      SystemService,
      teamScopedSystem(
        systemHandlers(deps.system, {
          version: deps.version,
          connectedVms: () => deps.hub.presence.connectedCount(),
        }),
        deps.access,
      ),
    );
    add(Health, health.handlers);
    const reflection = reflectionHandlers(files, names);
    add(ReflectionV1, reflection);
    // v1alpha has the same messages as v1, field for field: one implementation serves both.
    add(ReflectionV1alpha, reflection as unknown as ServiceImpl<typeof ReflectionV1alpha>);
    return server;
  };

  const local: Pick<BindOptions, "authenticate"> = { authenticate: () => ({ kind: "local" }) };
  const remote: Pick<BindOptions, "authenticate" | "authorize"> = {
    authenticate(metadata, method, peer) {
      // Public services need no token, so they never look at one: a bad one cannot fail them.
      if (PUBLIC.has(method.parent.typeName)) return ANONYMOUS;
      if (failures) {
        const key = failures.peerOf(peer());
        const waitMs = failures.throttled(key);
        if (waitMs > 0) {
          // Refused before any hash work: a throttled peer costs a map lookup.
          throw new SecretsError(
            "resource_exhausted",
            `authorization: too many failed authentications from ${key}; retry in ${Math.ceil(waitMs / 1000)} s`,
          );
        }
      }
      const values = metadata.get("authorization");
      // Never first-wins: a proxy or client that adds its own header must not decide who calls.
      if (values.length > 1) throw unauthenticated("authorization: more than one header");
      const header = values[0];
      if (header === undefined) throw unauthenticated("authorization: a bearer token is required");
      const m = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      if (!m?.[1]) throw unauthenticated("authorization: expected 'Bearer <token>'");
      return deps.access.authenticate(m[1]);
    },
    authorize(caller: Caller, method: DescMethod) {
      if (PUBLIC.has(method.parent.typeName)) return;
      if (caller.kind === "anonymous") throw unauthenticated("authorization: token required");
      const path = `${method.parent.typeName}/${method.name}`;
      if (caller.kind === "vm" && !VM_METHODS.has(path)) {
        throw permissionDenied(
          `${method.name}: a VM token may only call EnvService and OAuthService's StartOAuthLogin, WaitOAuthLogin and RefreshOAuth`,
        );
      }
      const refusal = refusalFor(caller, path, method.name);
      if (refusal !== undefined) throw permissionDenied(refusal);
    },
  };

  return {
    async listen(config) {
      let socket: string | null = null;
      let tcp: string | null = null;
      if (config.socket) {
        await unlink(config.socket).catch(() => {});
        const server = build(local);
        await bind(server, `unix://${config.socket}`, ServerCredentials.createInsecure());
        await chmod(config.socket, 0o600);
        servers.push({ server, socket: config.socket });
        socket = config.socket;
      }
      if (config.listen) {
        failures = createAuthFailures(
          { limit: config.authFailureLimit, windowMs: config.authFailureWindowMs },
          reportAuthFailure,
        );
        const server = build(remote, {
          // grpc-js closes a connection once it has had no call for this long.
          "grpc.max_connection_idle_ms": config.idleTimeoutMs,
        });
        const creds = config.tls
          ? ServerCredentials.createSsl(null, [
              {
                cert_chain: readFileSync(config.tls.cert),
                private_key: readFileSync(config.tls.key),
              },
            ])
          : ServerCredentials.createInsecure();
        const host = config.listen.host.includes(":")
          ? `[${config.listen.host}]`
          : config.listen.host;
        const port = await bind(server, `${host}:${config.listen.port}`, creds);
        servers.push({ server });
        tcp = `${host}:${port}`;
        const h2 = http2ServersOf(server);
        if (h2) {
          for (const s of h2) guardConnections(s, { ...config, log: deps.log });
        } else {
          deps.log.error(
            `grpc-js internals differ from ${GRPC_JS_VERSION}: duplicate authorization headers are not detected and the handshake timeout is off`,
          );
        }
        if (!config.tls && !isLoopback(config.listen.host)) {
          deps.log.warn(
            "serving plaintext TCP on a non-loopback address (--insecure): tokens and values cross the network unencrypted",
            { listen: tcp },
          );
        }
      }
      return { socket, tcp };
    },
    setServing(serving) {
      health.set(serving);
    },
    async shutdown(graceMs) {
      health.close();
      failures?.close();
      const graceful = Promise.all(
        servers.map(
          ({ server }) => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        ),
      );
      const timer = new Promise<"timeout">((resolve) =>
        setTimeout(() => resolve("timeout"), graceMs).unref(),
      );
      if ((await Promise.race([graceful, timer])) === "timeout") {
        shutdownController.abort();
        for (const { server } of servers) server.forceShutdown();
      }
      for (const { socket } of servers) if (socket) await unlink(socket).catch(() => {});
      await Promise.all(writes);
    },
  };

  function reportAuthFailure(r: AuthFailureReport) {
    const seconds = r.kind === "first" ? 0 : Math.max(1, Math.round(r.sinceMs / 1000));
    switch (r.kind) {
      case "first":
        deps.log.warn("authentication refused", r);
        auditRefusal({
          requestId: r.requestId,
          actor: "anonymous",
          action: `rpc.${r.method}`,
          result: "unauthenticated",
          peer: r.peer,
          detail: r.reason,
        });
        return;
      case "summary":
      case "others": {
        // One line per window: the named peer's failures, or the rest's, counted.
        const from = r.kind === "summary" ? r.peer : `${r.peers} more peers`;
        const { count, throttled } = r;
        deps.log.warn("authentication refused repeatedly", {
          ...(r.kind === "summary" ? { peer: r.peer } : { peers: r.peers }),
          count,
          throttled,
          seconds,
        });
        auditRefusal({
          requestId: "-",
          actor: "anonymous",
          action: "auth.failures",
          result: "unauthenticated",
          ...(r.kind === "summary" ? { peer: r.peer } : {}),
          detail: `${count}${r.kind === "summary" ? " more" : ""} refused authentications from ${from} in ${seconds} s (${throttled} throttled)`,
        });
        return;
      }
    }
  }
}

// --- internal ---

function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
