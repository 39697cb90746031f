/** A minimal grpc.reflection.v1 client, as a stock tool (grpcurl) would use it. */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import type { ServerReflectionResponse } from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";

async function reflect(
  target: string,
  request: Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1],
): Promise<ServerReflectionResponse> {
  const client = new Client(target, credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (m: unknown) => Buffer.from(toBinary(ServerReflectionRequestSchema, m as never)),
      (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    );
    const responses: ServerReflectionResponse[] = [];
    call.on("data", (m: ServerReflectionResponse) => responses.push(m));
    // The server must end the stream with OK once the client half-closes (it once hung).
    const status = new Promise<number>((resolve) => call.on("status", (s) => resolve(s.code)));
    call.on("error", () => {});
    call.write(create(ServerReflectionRequestSchema, request));
    call.end();
    if ((await status) !== 0) throw new Error("reflection stream did not end with OK");
    const first = responses[0];
    if (!first) throw new Error("no reflection response");
    return first;
  } finally {
    client.close();
  }
}

export async function listServicesViaReflection(target: string): Promise<string[]> {
  const res = await reflect(target, { messageRequest: { case: "listServices", value: "" } });
  if (res.messageResponse.case !== "listServicesResponse") throw new Error("unexpected response");
  return res.messageResponse.value.service.map((s) => s.name);
}
