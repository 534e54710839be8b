/**
 * Fixed finding (severity: low; issue 17 area, lone-surrogate handling: an entry point not made
 * well-formed, availability only). A listing's titles and descriptions are now mended where they
 * enter (mcp/mcp-tool-listing.ts `pinToolListing`); a schema holding one is still refused.
 *
 * Warden now cuts MCP descriptions pair-safe (mcp/mcp-tool-listing.ts), but the listing a server
 * sends is not made well-formed where it enters. A server that cuts its own description with
 * `String.prototype.slice` (common in JavaScript servers) sends `"…\ud83d"` when the cut falls
 * inside an emoji; the SDK's JSON.parse makes that a lone surrogate, canonical JSON refuses the
 * pin, and `McpConnection.open` fails "ERR_MCP_PROTOCOL: … lists tools that are not plain JSON":
 * every task naming that server fails to start, though nothing in the listing is unsafe. Model
 * turns, tool outputs, MCP call results and MCP client data are all mended at entry
 * (custody/well-formed-json.ts) with the count on the span; the listing is the one MCP input that
 * is refused instead.
 *
 * Safe behaviour asserted: the connection opens, the listing is pinned with the description
 * mended (U+FFFD in place of the half), so the pin's digest commits to what the model is shown.
 *
 * Real parts: a real stdio MCP server (official SDK) in the OS sandbox, Warden's real connection.
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { McpConnection } from '../../mcp/mcp-connection';
import { McpStdioServerSchema } from '../../mcp/mcp-server-config';
import { testStartContext } from '../mcp/mcp-test-kit';

const SERVER = path.join(__dirname, 'fixtures', 'cut-description-server.mjs');
let connection: McpConnection | undefined;
afterAll(() => connection?.close());

describe('an MCP server whose own description cut ends on half an emoji', () => {
  it('is connected, its listing pinned with the description made well-formed', async () => {
    connection = await McpConnection.open(
      'docs',
      McpStdioServerSchema.parse({ command: 'node', args: [SERVER], workspace: 'none' }),
      testStartContext({ extraReadOnlyPaths: [path.dirname(SERVER)] }),
    );
    const search = connection.listing.tools.find((t) => t.mcpName === 'search');
    expect(search?.description).toBe(`Searches the docs for a phrase ........\ufffd`);
    expect(connection.listing.hash).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);
});
