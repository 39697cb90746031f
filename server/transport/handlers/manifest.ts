import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  ManifestBinding,
  ManifestInfoSchema,
  ManifestService,
  PlannedEntrySchema,
} from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { EntryAction, EntryState } from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import type { ManifestPlan, ManifestUseCases } from "../../secrets/manifest/manifests.js";
import type { ManifestRecord } from "../../store/types.js";
import type { ServiceImpl } from "../adapter.js";
import { ts } from "../convert.js";

export function manifestHandlers(m: ManifestUseCases): ServiceImpl<typeof ManifestService> {
  return {
    async planManifest(req) {
      return toPlan(m.plan(req.manifest, bindOf(req.bind), req.regenerate));
    },
    async applyManifest(req, ctx) {
      const p = await m.apply(ctx, req.manifest, bindOf(req.bind), req.regenerate);
      return { ...toPlan(p), revision: BigInt(p.revision) };
    },
    async listManifests() {
      return { manifests: m.list().map(toInfo) };
    },
    async getManifest(req) {
      const rec = m.get(req.name);
      const text = JSON.stringify(
        { name: rec.name, description: rec.description, entries: rec.entries },
        null,
        2,
      );
      return { manifest: toInfo(rec), text };
    },
    async removeManifest(req, ctx) {
      const r = await m.remove(ctx, req.name, req.deleteSecrets);
      return { revision: BigInt(r.revision), deletedSecrets: r.deleted };
    },
    async manifestStatus(req) {
      return {
        entries: m.status(req.name, req.vm).map((r) => {
          const v = r.rec?.versions.find((x) => x.version === r.rec?.currentVersion);
          return {
            manifest: r.manifest,
            vm: r.vm,
            id: r.target.entry.id,
            class: r.target.entry.class,
            env: r.target.entry.env ?? "",
            state: STATE[r.state],
            source: r.state === "missing" ? "" : (v?.source ?? "provided"),
            required: r.target.entry.required,
            secret: r.target.secret,
            error:
              r.rec?.fetchError ??
              (r.state === "malformed" ? "the value does not match the entry's format" : ""),
          };
        }),
      };
    },
    async provideManifestValue(req, ctx) {
      const r = await m.provide(ctx, req.manifest, req.id, req.value);
      return { secret: r.secret, version: r.version, revision: BigInt(r.revision) };
    },
  };
}

// --- internal ---

const STATE = {
  configured: EntryState.CONFIGURED,
  missing: EntryState.MISSING,
  malformed: EntryState.MALFORMED,
};
const ACTION = {
  keep: EntryAction.KEEP,
  generate: EntryAction.GENERATE,
  regenerate: EntryAction.REGENERATE,
  fetch: EntryAction.FETCH,
  provide: EntryAction.PROVIDE,
};

function bindOf(b: ManifestBinding | undefined): { vm?: string; group?: string } {
  if (b?.target.case === "vm") return { vm: b.target.value };
  if (b?.target.case === "group") return { group: b.target.value };
  return {};
}

function toPlan(p: ManifestPlan) {
  return {
    name: p.name,
    entries: p.entries.map(
      (pe): MessageInitShape<typeof PlannedEntrySchema> => ({
        id: pe.target.entry.id,
        class: pe.target.entry.class,
        env: pe.target.entry.env ?? "",
        secret: pe.target.secret,
        scope: pe.target.scope,
        action: ACTION[pe.action],
        state: STATE[pe.state],
        required: pe.target.entry.required,
        description: pe.target.entry.description,
        label: pe.target.entry.label ?? "",
        format: pe.target.entry.format ?? "",
        error: pe.error ?? "",
      }),
    ),
    vms: p.vms,
  };
}

function toInfo(r: ManifestRecord): MessageInitShape<typeof ManifestInfoSchema> {
  return {
    name: r.name,
    description: r.description,
    bind: r.bind,
    entryCount: r.entries.length,
    createdAt: ts(r.createdAt),
    updatedAt: ts(r.updatedAt),
    modRevision: BigInt(r.modRevision),
  };
}
