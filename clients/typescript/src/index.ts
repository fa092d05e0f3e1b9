export * from "./client.js";
export * from "./errors.js";
export type { ApprovalOptions, Ruling } from "./approval.js";
export type { components, paths, operations } from "./schema.js";
