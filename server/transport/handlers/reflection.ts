/**
 * gRPC server reflection (v1 and v1alpha, which share their messages), so grpcurl, `buf curl`
 * and other stock tools can list and call the API. Files are served from the generated
 * descriptors, each with its transitive imports (google/protobuf/*.proto included).
 *
 * Every service that ListServices names must resolve through file_containing_symbol: the
 * tools fetch each listed service's file before they print anything, so one missing file
 * (it was v1alpha's own) fails `buf curl --list-methods` as a whole (issue #12). The two
 * reflection files are therefore always served here, and a listed name with no file is a
 * programming error thrown at construction, not a tool failing later.
 */
import type { DescFile, MessageInitShape } from "@bufbuild/protobuf";
import { createRegistry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type {
  ServerReflectionResponseSchema,
  ServerReflection as V1,
} from "../../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1_reflection } from "../../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../../../proto/gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ServiceImpl } from "../adapter.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;
type Answer = NonNullable<Response["messageResponse"]>;

/** gRPC status codes carried in an ErrorResponse (the stream itself still ends OK). */
const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/**
 * The ServerReflection implementation over `files` (and their imports) listing
 * `serviceNames`. Throws if a listed service is in none of the files.
 */
export function reflectionHandlers(
  files: DescFile[],
  serviceNames: string[],
): ServiceImpl<typeof V1> {
  const all = [
    ...files,
    file_grpc_reflection_v1_reflection,
    file_grpc_reflection_v1alpha_reflection,
  ];
  const byName = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (byName.has(f.proto.name)) return;
    byName.set(f.proto.name, f);
    for (const d of f.dependencies) visit(d);
  };
  for (const f of all) visit(f);
  const registry = createRegistry(...byName.values());
  for (const name of serviceNames) {
    if (registry.getService(name) === undefined) {
      throw new Error(`reflection: listed service ${name} is in no served file`);
    }
  }

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    // A symbol is a type, or a member of one (a method, field or enum value): try both.
    const desc = registry.get(symbol) ?? registry.get(symbol.replace(/\.[^.]+$/, ""));
    return desc && "file" in desc ? desc.file : undefined;
  };

  const answer = (req: {
    messageRequest: { case?: string | undefined; value?: unknown };
  }): Answer => {
    const r = req.messageRequest;
    const value = String(r.value);
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return filesOf(byName.get(value)) ?? notFound(`file ${value}`);
      case "fileContainingSymbol":
        return filesOf(fileOfSymbol(value)) ?? notFound(`symbol ${value}`);
      case "fileContainingExtension":
        // No file declares an extension: every extendee has none.
        return notFound(`extension of ${extendee(r.value)}`);
      case "allExtensionNumbersOfType":
        return registry.getMessage(value)
          ? {
              case: "allExtensionNumbersResponse",
              value: { baseTypeName: value, extensionNumber: [] },
            }
          : notFound(`type ${value}`);
      default:
        return {
          case: "errorResponse",
          value: { errorCode: UNIMPLEMENTED, errorMessage: "not implemented" },
        };
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

// --- internal ---

/** The file and its transitive imports, each once, the file first. */
function filesOf(f: DescFile | undefined): Answer | undefined {
  if (!f) return undefined;
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const walk = (x: DescFile) => {
    if (seen.has(x.proto.name)) return;
    seen.add(x.proto.name);
    out.push(toBinary(FileDescriptorProtoSchema, x.proto));
    for (const d of x.dependencies) walk(d);
  };
  walk(f);
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
}

function notFound(what: string): Answer {
  return {
    case: "errorResponse",
    value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
  };
}

function extendee(v: unknown): string {
  return typeof v === "object" && v !== null && "containingType" in v
    ? String(v.containingType)
    : "?";
}
