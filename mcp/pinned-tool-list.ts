/**
 * The shape of a pinned MCP tool list, as the activity that pins it returns it (recorded once in
 * the workflow history) and as custody records it, and the reference (`tools.mcpPins`: server,
 * transport, digest) that travels in its place with every later activity: a server's listing is
 * the server's to size, so it must not ride along with each step (mcp-listing-store.ts keeps it
 * once, by digest). Pure zod: workflow code includes it. Pinning itself (hashing) is in
 * mcp-tool-listing.ts.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { McpToolAnnotationsSchema } from './mcp-server-config';
export type PinnedMcpTool = z.infer<typeof PinnedMcpToolSchema>;
export type McpToolListing = z.infer<typeof McpToolListingSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('mcp/pinned-tool-list', () => {
  /** One tool as pinned: the parts of MCP's `Tool` that change what a call means. */
  const PinnedMcpToolSchema = z.strictObject({
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
  const McpToolListingSchema = z.strictObject({
    server: z.string(),
    /** How it was reached: `stdio` (in the OS sandbox) or the HTTP URL. */
    transport: z.string(),
    /** Reported by the server at initialisation (untrusted, for the record). */
    serverInfo: z.strictObject({ name: z.string(), version: z.string() }).optional(),
    tools: z.array(PinnedMcpToolSchema),
    /** SHA-256 of the canonical JSON of `tools`: the pin. */
    hash: z.string(),
  });
  /** A lower-case hex SHA-256: the pin of a listing and the key it is stored under. */
  const ListingDigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');
  /**
   * A pinned listing by reference: what a task carries into its activities once its servers are
   * pinned (`tools.mcpPins`). Every field is Warden's or the task file's, never the server's
   * (`serverInfo` stays in the one history event that pinned it), so its size does not depend on
   * what a server lists.
   */
  const McpListingRefSchema = z.strictObject({
    server: z.string(),
    transport: z.string(),
    /** SHA-256 of the canonical JSON of the listing's `tools` (RFC 8785): the pin, and the store key. */
    hash: ListingDigestSchema,
  });
  return { PinnedMcpToolSchema, McpToolListingSchema, ListingDigestSchema, McpListingRefSchema };
});

export const { PinnedMcpToolSchema, McpToolListingSchema, ListingDigestSchema, McpListingRefSchema } = schemas;
export type McpListingRef = z.infer<typeof McpListingRefSchema>;

/** The reference that travels for `listing`. */
export function listingRefOf(listing: McpToolListing): McpListingRef {
  return { server: listing.server, transport: listing.transport, hash: listing.hash };
}
