/**
 * Pinned MCP tool lists, stored once by their pin. A listing is the server's to size (up to
 * MAX_LISTING_BYTES of canonical JSON per server), so it must not travel with every activity of a
 * task: the activity that pins a server stores its `tools` here (content-addressed, in the state
 * database's blob store, shared by every worker when the state is) and the task carries only
 * `{ server, transport, hash }` (`tools.mcpPins`). An activity that needs the listing reads it
 * back by that digest.
 *
 * Invariant: a listing is handed out only if its bytes hash to the pin it was asked for (the
 * blob store re-hashes what it reads, and the tools are parsed and hashed again here) and every
 * tool is named into the server the reference names; anything else is refused
 * (ERR_MCP_PIN_MISMATCH), never repaired or guessed. A digest nobody stored on this state
 * database is ERR_MCP_LISTING_MISSING: the call fails closed rather than run without its pin.
 */
import { z } from 'zod';
import { canonicalBytes } from '../custody/canonical-json';
import { McpError, WardenError } from '../errors';
import type { BlobStore } from '../state/blob-store';
import { hashTools } from './mcp-tool-listing';
import { PinnedMcpToolSchema, type McpListingRef, type McpToolListing, type PinnedMcpTool } from './pinned-tool-list';

const ToolsSchema = z.array(PinnedMcpToolSchema);

/** Listings kept parsed in memory per worker (each was checked against its digest when read). */
const CACHED_LISTINGS = 64;

export interface McpListingStore {
  /**
   * Stores `listing.tools` under `listing.hash` (a no-op when already stored). Throws McpError
   * ERR_MCP_PIN_MISMATCH when the tools do not hash to `listing.hash`.
   */
  put(listing: McpToolListing): Promise<void>;
  /**
   * The listing `ref` names, checked against its digest. Throws McpError ERR_MCP_PIN_MISMATCH
   * (the stored bytes or tools do not match the pin or the server), ERR_MCP_LISTING_MISSING (no
   * such listing in this state database).
   */
  get(ref: McpListingRef): Promise<McpToolListing>;
}

export function createMcpListingStore(blobs: BlobStore): McpListingStore {
  const cache = new Map<string, readonly PinnedMcpTool[]>();
  const remember = (hash: string, tools: readonly PinnedMcpTool[]) => {
    cache.delete(hash);
    cache.set(hash, tools);
    if (cache.size > CACHED_LISTINGS) cache.delete(cache.keys().next().value!);
  };
  return {
    async put(listing) {
      const bytes = canonicalBytes(listing.tools);
      if (hashTools(listing.tools) !== listing.hash) {
        throw new McpError('ERR_MCP_PIN_MISMATCH', `the tool list of MCP server ${listing.server} does not hash to its pin ${listing.hash}`, { details: { server: listing.server, pin: listing.hash } });
      }
      await blobs.put(bytes);
      remember(listing.hash, listing.tools);
    },
    async get(ref) {
      const cached = cache.get(ref.hash);
      const tools = cached ?? (await readChecked(blobs, ref));
      checkServer(ref, tools);
      if (cached === undefined) remember(ref.hash, tools);
      return { server: ref.server, transport: ref.transport, tools: tools.map((t) => ({ ...t })), hash: ref.hash };
    },
  };
}

async function readChecked(blobs: BlobStore, ref: McpListingRef): Promise<PinnedMcpTool[]> {
  const mismatch = (why: string) =>
    new McpError('ERR_MCP_PIN_MISMATCH', `the stored tool list of MCP server ${ref.server} does not match its pin ${ref.hash}: ${why}; its tools are refused`, {
      details: { server: ref.server, pin: ref.hash },
    });
  let bytes: Buffer | undefined;
  try {
    bytes = await blobs.get(ref.hash);
  } catch (error) {
    // The blob store re-hashes what it reads: bytes edited in the database are refused there.
    if (error instanceof WardenError && error.code === 'ERR_SNAPSHOT_CORRUPT') throw mismatch('the stored bytes do not hash to it');
    if (error instanceof TypeError) throw mismatch('not a SHA-256 digest');
    throw error;
  }
  if (bytes === undefined) {
    throw new McpError('ERR_MCP_LISTING_MISSING', `the pinned tool list of MCP server ${ref.server} (${ref.hash}) is not in this worker's state database; its tools are refused`, {
      details: { server: ref.server, pin: ref.hash },
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw mismatch('the stored bytes are not JSON');
  }
  const tools = ToolsSchema.safeParse(parsed);
  if (!tools.success) throw mismatch('the stored value is not a tool list');
  // The bytes hashed to the pin; the tools as parsed must too (nothing dropped or added by parsing).
  if (hashTools(tools.data) !== ref.hash) throw mismatch('the parsed tools do not hash to it');
  return tools.data;
}

/** A listing pinned for one server is never offered under another's name. */
function checkServer(ref: McpListingRef, tools: readonly PinnedMcpTool[]): void {
  const stray = tools.find((t) => !t.name.startsWith(`${ref.server}.`));
  if (stray !== undefined) {
    throw new McpError('ERR_MCP_PIN_MISMATCH', `the stored tool list ${ref.hash} is not MCP server ${ref.server}'s (it names ${stray.name}); its tools are refused`, {
      details: { server: ref.server, pin: ref.hash },
    });
  }
}
