// Transitional: the renderers moved to client/env-render.ts (shared by the shim and the CLI).
export * from "../client/env-render.js";
