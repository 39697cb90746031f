/**
 * Credential templates (issue #13): the catalogue, template validation and credential
 * validation. The one entry point for the use cases, the CLI's handler and the test runner.
 */

export type { CheckedCredential, CredentialError, CredentialResult } from "./credential.js";
export { fieldsToAsk, validateCredential } from "./credential.js";
export type { HttpTestRequest } from "./http-request.js";
export { buildHttpRequest, connectionTestFor, credentialValues } from "./http-request.js";
export type { FieldInput, TemplateInput, TestInput } from "./input.js";
export type { TemplateRegistry } from "./registry.js";
export { BUILTIN_TEMPLATES, createTemplateRegistry, loadUserTemplates } from "./registry.js";
export * from "./schema.js";
export { parseTemplateFile, validateTemplate } from "./validate-template.js";
