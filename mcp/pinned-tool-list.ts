/**
 * The shape of a pinned MCP tool list, as it travels in the task (`tools.mcpPinned`), the
 * workflow history and custody. Pure zod: workflow code includes it. Pinning itself (hashing)
 * is in mcp-tool-listing.ts.
 */
import { z } from 'zod';
import { McpToolAnnotationsSchema } from './mcp-server-config';

/** One tool as pinned: the parts of MCP's `Tool` that change what a call means. */
export const PinnedMcpToolSchema = z.strictObject({
  /** The Warden name: `<server>.<tool>`. */
  name: z.string(),
  /** The name on the server. */
  mcpName: z.string(),
  title: z.string().optional(),
  description: z.string(),
  inputSchema: z.record(z.string(), z.unknown()),
  outputSchema: z.record(z.string(), z.unknown()).optional(),
  annotations: McpToolAnnotationsSchema.optional(),
});
export type PinnedMcpTool = z.infer<typeof PinnedMcpToolSchema>;

export const McpToolListingSchema = z.strictObject({
  server: z.string(),
  /** How it was reached: `stdio` (in the OS sandbox) or the HTTP URL. */
  transport: z.string(),
  /** Reported by the server at initialisation (untrusted, for the record). */
  serverInfo: z.strictObject({ name: z.string(), version: z.string() }).optional(),
  tools: z.array(PinnedMcpToolSchema),
  /** SHA-256 of the canonical JSON of `tools`: the pin. */
  hash: z.string(),
});
export type McpToolListing = z.infer<typeof McpToolListingSchema>;

