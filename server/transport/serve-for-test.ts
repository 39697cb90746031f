/**
 * For the adapter's own tests: serves one bound service on 127.0.0.1 over real grpc-js and
 * returns a generic client of it (untyped: the tests call methods by name).
 */
import type { ServerOptions, ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  credentials,
  makeGenericClientConstructor,
  Server,
  ServerCredentials,
} from "@grpc/grpc-js";
import type { EnvService } from "../../proto/gen/vmauth/v1/env_pb.js";
import type { ServiceImpl } from "./adapter.js";

/** Serves `definition` with `handlers` (and grpc-js server `options`) on a random port. */
export async function serveForTest(
  definition: ServiceDefinition,
  handlers: UntypedServiceImplementation,
  serviceName: string,
  options: ServerOptions = {},
) {
  const server = new Server(options);
  server.addService(definition, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const Client = makeGenericClientConstructor(definition, serviceName);
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    client,
    close() {
      client.close();
      server.forceShutdown();
    },
  };
}

/** An EnvService for the adapter's tests: its unary calls answer empty, around `watchEnv`. */
export function envServiceStub(
  watchEnv: ServiceImpl<typeof EnvService>["watchEnv"],
): ServiceImpl<typeof EnvService> {
  return {
    async getEnv() {
      return {};
    },
    async ackEnv() {
      return {};
    },
    watchEnv,
  };
}
