/**
 * A minimal gRPC reflection client, as a stock tool (grpcurl, `buf curl`) uses it: one
 * ServerReflectionInfo stream per question, over v1 or v1alpha. The two versions have the
 * same messages field for field (grpc/reflection/v1alpha is v1 renamed), so v1's schemas
 * encode both; only the method path differs.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials } from "@grpc/grpc-js";
import type { ServerReflectionResponse } from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";

export type ReflectionVersion = "v1" | "v1alpha";
type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

/**
 * Sends `requests` on one stream to `target` (host:port or unix:///path), half-closes, and
 * returns the responses in order. Throws if the stream does not end with OK.
 */
export async function reflect(
  target: string,
  requests: Request[],
  version: ReflectionVersion = "v1",
): Promise<ServerReflectionResponse[]> {
  const client = new Client(target, credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      (m: unknown) => Buffer.from(toBinary(ServerReflectionRequestSchema, m as never)),
      (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    );
    const responses: ServerReflectionResponse[] = [];
    call.on("data", (m: ServerReflectionResponse) => responses.push(m));
    // The server must end the stream with OK once the client half-closes (it once hung).
    const status = new Promise<number>((resolve) => call.on("status", (s) => resolve(s.code)));
    call.on("error", () => {});
    for (const r of requests) call.write(create(ServerReflectionRequestSchema, r));
    call.end();
    if ((await status) !== 0) throw new Error("reflection stream did not end with OK");
    if (responses.length !== requests.length) {
      throw new Error(`${requests.length} reflection requests, ${responses.length} responses`);
    }
    return responses;
  } finally {
    client.close();
  }
}

/** The service names ListServices returns. */
export async function listServicesViaReflection(
  target: string,
  version: ReflectionVersion = "v1",
): Promise<string[]> {
  const [res] = await reflect(
    target,
    [{ messageRequest: { case: "listServices", value: "" } }],
    version,
  );
  if (res?.messageResponse.case !== "listServicesResponse") throw new Error("unexpected response");
  return res.messageResponse.value.service.map((s) => s.name);
}

/**
 * The file descriptors answering one file_by_filename or file_containing_symbol request, or
 * the server's error response as `{ errorCode, errorMessage }`.
 */
export async function filesViaReflection(
  target: string,
  question: { fileByFilename: string } | { fileContainingSymbol: string },
  version: ReflectionVersion = "v1",
): Promise<FileDescriptorProto[] | { errorCode: number; errorMessage: string }> {
  const messageRequest =
    "fileByFilename" in question
      ? { case: "fileByFilename" as const, value: question.fileByFilename }
      : { case: "fileContainingSymbol" as const, value: question.fileContainingSymbol };
  const [res] = await reflect(target, [{ messageRequest }], version);
  const r = res?.messageResponse;
  if (r?.case === "errorResponse") {
    return { errorCode: r.value.errorCode, errorMessage: r.value.errorMessage };
  }
  if (r?.case !== "fileDescriptorResponse") throw new Error("unexpected response");
  return r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}
