/**
 * Messages between the worker and the sandbox host process. Everything that crosses is plain
 * JSON validated on arrival: the host trusts nothing the worker did not spell out, and the worker
 * trusts nothing the host (which runs untrusted code) sends back beyond this shape.
 */
import { z } from 'zod';

/** Capabilities the host may hand to one tool call, already narrowed to what the task grants. */
export const CapabilityGrantSchema = z.strictObject({
  fs: z
    .strictObject({
      /** Absolute, real path of the task's workspace. */
      root: z.string(),
      read: z.boolean(),
      write: z.boolean(),
      list: z.boolean(),
    })
    .optional(),
  http: z
    .strictObject({
      /** `host` or `host:port` entries; everything else is refused. */
      allowedHosts: z.array(z.string()),
    })
    .optional(),
  sql: z
    .strictObject({
      /** Database name -> absolute path of its SQLite file. */
      databases: z.record(z.string(), z.string()),
      query: z.boolean(),
      exec: z.boolean(),
    })
    .optional(),
});
export type CapabilityGrant = z.infer<typeof CapabilityGrantSchema>;

export const SandboxLimitsSchema = z.strictObject({
  timeoutMs: z.number().int().positive(),
  memoryMb: z.number().int().min(8),
  maxOutputBytes: z.number().int().positive(),
});
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

export const SandboxRunRequestSchema = z.strictObject({
  type: z.literal('run'),
  id: z.string(),
  toolName: z.string(),
  /** Body of `async function (input, warden)`. */
  source: z.string(),
  input: z.unknown(),
  limits: SandboxLimitsSchema,
  capabilities: CapabilityGrantSchema,
});
export type SandboxRunRequest = z.infer<typeof SandboxRunRequestSchema>;

export const SandboxRunResponseSchema = z.discriminatedUnion('ok', [
  z.strictObject({
    type: z.literal('result'),
    id: z.string(),
    ok: z.literal(true),
    output: z.unknown(),
    durationMs: z.number(),
  }),
  z.strictObject({
    type: z.literal('result'),
    id: z.string(),
    ok: z.literal(false),
    error: z.strictObject({ code: z.string(), message: z.string() }),
    durationMs: z.number(),
  }),
]);
export type SandboxRunResponse = z.infer<typeof SandboxRunResponseSchema>;
