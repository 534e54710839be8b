/**
 * A server's tool list as Warden pins it: every tool's name, description, schemas and
 * annotations, hashed in canonical JSON (RFC 8785) when the task starts. The pin is recorded in
 * the workflow history and in custody; a server whose list no longer hashes to it is refused (a
 * "rug pull": changing what a tool says or does after the task was set up and approved).
 *
 * Everything in a listing comes from the server and is untrusted: descriptions can carry prompt
 * injections, so they are shown to the model as the server's words, never as instructions.
 */
import { canonicalize, canonicalSha256 } from '../custody/canonical-json';
import { McpError } from '../errors';
import { McpToolAnnotationsSchema } from './mcp-server-config';
import { isMcpToolName, mcpWardenToolName } from './mcp-tool-names';
import type { McpToolListing, PinnedMcpTool } from './pinned-tool-list';
import { cutText } from '../cut-text';
import { wellFormed } from '../custody/span-record';

export { McpToolListingSchema, PinnedMcpToolSchema, type McpToolListing, type PinnedMcpTool } from './pinned-tool-list';

/** The most tools one server may offer (a listing is pinned into history). */
export const MAX_TOOLS_PER_SERVER = 256;
/** The largest description kept per tool. */
export const MAX_DESCRIPTION_CHARS = 8192;
/** The largest pinned list of one server, in bytes of canonical JSON (recorded once in history and stored once by digest; activities get the digest). */
export const MAX_LISTING_BYTES = 256 * 1024;

/** A raw `tools/list` entry as the SDK returns it. */
export interface RawMcpTool {
  name: string;
  title?: string | undefined;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown> | undefined;
  annotations?: Record<string, unknown> | undefined;
}

/**
 * Pins a server's raw tool list: validates names (MCP's rules, no two tools on one Warden name),
 * keeps only the fields that matter, sorts by name, hashes. A title or description holding a lone
 * UTF-16 surrogate (a server that cut its own text inside an emoji) is mended (U+FFFD, as
 * `String.prototype.toWellFormed`) before the cut and the hash, so the pin commits to exactly the
 * text the model is shown; schemas are structure and are refused instead. Throws McpError ERR_MCP_PROTOCOL for
 * a list Warden cannot offer safely, ERR_MCP_NAME_CONFLICT for colliding names.
 */
export function pinToolListing(server: string, transport: string, raw: readonly RawMcpTool[], serverInfo?: { name: string; version: string }): McpToolListing {
  if (raw.length > MAX_TOOLS_PER_SERVER) {
    throw new McpError('ERR_MCP_PROTOCOL', `MCP server ${server} lists ${raw.length} tools, more than ${MAX_TOOLS_PER_SERVER}`, { details: { server } });
  }
  const byName = new Map<string, PinnedMcpTool>();
  for (const tool of raw) {
    if (typeof tool.name !== 'string' || !isMcpToolName(tool.name)) {
      throw new McpError('ERR_MCP_PROTOCOL', `MCP server ${server} lists a tool named ${JSON.stringify(tool.name)}, which MCP does not allow`, { details: { server } });
    }
    const name = mcpWardenToolName(server, tool.name);
    if (byName.has(name)) {
      throw new McpError('ERR_MCP_NAME_CONFLICT', `MCP server ${server} lists two tools named ${JSON.stringify(tool.name)}`, { details: { server, tool: tool.name } });
    }
    const annotations = McpToolAnnotationsSchema.safeParse(pickAnnotations(tool.annotations));
    byName.set(name, {
      name,
      mcpName: tool.name,
      ...(typeof tool.title === 'string' ? { title: wellFormed(tool.title) } : {}),
      description: cutText(typeof tool.description === 'string' ? wellFormed(tool.description) : '', MAX_DESCRIPTION_CHARS),
      inputSchema: tool.inputSchema,
      ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema }),
      ...(annotations.success && Object.keys(annotations.data).length > 0 ? { annotations: annotations.data } : {}),
    });
  }
  const tools = [...byName.values()].sort((a, b) => (a.mcpName < b.mcpName ? -1 : a.mcpName > b.mcpName ? 1 : 0));
  let text: string;
  try {
    text = canonicalize(tools);
  } catch (error) {
    // Not JSON a hash can be taken of (a lone surrogate in a schema, a non-finite number): refused, never guessed.
    throw new McpError('ERR_MCP_PROTOCOL', `MCP server ${server} lists tools that are not plain JSON: ${(error as Error).message}`, { details: { server } });
  }
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_LISTING_BYTES) {
    throw new McpError('ERR_MCP_PROTOCOL', `MCP server ${server} lists ${size} bytes of tools, more than ${MAX_LISTING_BYTES}`, { details: { server } });
  }
  return { server, transport, ...(serverInfo === undefined ? {} : { serverInfo: { name: wellFormed(serverInfo.name), version: wellFormed(serverInfo.version) } }), tools, hash: hashTools(tools) };
}

/** The pin of a list of pinned tools. */
export function hashTools(tools: readonly PinnedMcpTool[]): string {
  return canonicalSha256(tools);
}

/** What differs between a pinned listing and a fresh one, for the refusal message. */
export function describeListingChange(pinned: McpToolListing, fresh: McpToolListing): string {
  const before = new Map(pinned.tools.map((t) => [t.mcpName, canonicalSha256(t)]));
  const after = new Map(fresh.tools.map((t) => [t.mcpName, canonicalSha256(t)]));
  const added = [...after.keys()].filter((n) => !before.has(n));
  const removed = [...before.keys()].filter((n) => !after.has(n));
  const changed = [...after.keys()].filter((n) => before.has(n) && before.get(n) !== after.get(n));
  const parts = [
    added.length > 0 ? `added ${added.join(', ')}` : '',
    removed.length > 0 ? `removed ${removed.join(', ')}` : '',
    changed.length > 0 ? `changed ${changed.join(', ')}` : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? parts.join('; ') : 'the listing differs';
}

function pickAnnotations(annotations: Record<string, unknown> | undefined): Record<string, unknown> {
  if (annotations === undefined || annotations === null || typeof annotations !== 'object') return {};
  const picked: Record<string, unknown> = {};
  for (const key of ['title', 'readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint']) {
    if (key in annotations) picked[key] = annotations[key];
  }
  return picked;
}
