/**
 * gRPC server reflection (v1 and v1alpha, which share their messages), so grpcurl and other
 * stock tools can list and call the API. Files are served from the generated descriptors,
 * each with its transitive imports.
 */
import type { DescFile, MessageInitShape } from "@bufbuild/protobuf";
import { createRegistry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type {
  ServerReflectionResponseSchema,
  ServerReflection as V1,
} from "../../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import type { ServiceImpl } from "../adapter.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;

export function reflectionHandlers(
  files: DescFile[],
  serviceNames: string[],
): ServiceImpl<typeof V1> {
  const registry = createRegistry(...files);
  const byName = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (byName.has(f.proto.name)) return;
    byName.set(f.proto.name, f);
    for (const d of f.dependencies) visit(d);
  };
  for (const f of files) visit(f);

  const withDeps = (f: DescFile): Uint8Array[] => {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const walk = (x: DescFile) => {
      if (seen.has(x.name)) return;
      seen.add(x.name);
      out.push(toBinary(FileDescriptorProtoSchema, x.proto));
      for (const d of x.dependencies) walk(d);
    };
    walk(f);
    return out;
  };

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const desc = registry.get(symbol) ?? registry.get(symbol.replace(/\.[^.]+$/, ""));
    return desc && "file" in desc ? desc.file : undefined;
  };

  const answer = (req: {
    messageRequest: { case?: string | undefined; value?: unknown };
  }): NonNullable<Response["messageResponse"]> => {
    const notFound = (what: string): NonNullable<Response["messageResponse"]> => ({
      case: "errorResponse",
      value: { errorCode: 5, errorMessage: `${what} not found` },
    });
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const f = byName.get(String(r.value));
        return f
          ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDeps(f) } }
          : notFound(`file ${String(r.value)}`);
      }
      case "fileContainingSymbol": {
        const f = fileOfSymbol(String(r.value));
        return f
          ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDeps(f) } }
          : notFound(`symbol ${String(r.value)}`);
      }
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: String(r.value), extensionNumber: [] },
        };
      default:
        return { case: "errorResponse", value: { errorCode: 12, errorMessage: "not implemented" } };
    }
  };

  return {
    async serverReflectionInfo(reqs, _ctx, stream) {
      for await (const req of reqs) {
        await stream.send({
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(req),
        });
      }
    },
  };
}
