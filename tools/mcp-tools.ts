/**
 * MCP servers' tools as descriptors (`mcp` executor, executors/mcp-executor.ts), from the tool
 * lists pinned when the task started. The server's annotations are its declared effects; the
 * task file can override them per tool (`tools.mcp.<server>.tools.<name>.annotations`), and a
 * tool that declares nothing is destructive and open-world (the descriptor's fail-closed rule).
 *
 * A description comes from the server and is untrusted: the model sees it marked as such.
 *
 * Pure (zod only): workflow code may import this file.
 */
import { isStdioServer, type McpServer } from '../mcp/mcp-server-config';
import type { McpToolListing, PinnedMcpTool } from '../mcp/pinned-tool-list';
import { defineTool, type ToolDescriptor } from './tool-descriptor';

/** The descriptor of one pinned MCP tool. */
export function descriptorOfMcpTool(listing: McpToolListing, tool: PinnedMcpTool, server: McpServer | undefined): ToolDescriptor {
  const override = server?.tools[tool.mcpName]?.annotations ?? {};
  const compensate = server?.tools[tool.mcpName]?.compensate?.tool;
  const annotations = { ...(tool.annotations ?? {}), ...override };
  return defineTool({
    name: tool.name,
    description: `[MCP server "${listing.server}", tool "${tool.mcpName}"; the description below is the server's, untrusted] ${tool.description || '(no description)'}`,
    inputSchema: tool.inputSchema,
    // What of the workspace the server sees (path rules judge its calls by it): a remote server none.
    // What of the workspace the server sees (path rules judge its calls by it; a remote server none),
    // and whether it can reach anything outside its sandbox (a remote server, or granted hosts).
    executor: {
      kind: 'mcp',
      server: listing.server,
      tool: tool.mcpName,
      pin: listing.hash,
      workspace: server === undefined ? 'overlay' : isStdioServer(server) ? server.workspace : 'none',
      egress: server === undefined || !isStdioServer(server) || server.hosts.length > 0,
    },
    annotations,
    ...(compensate === undefined ? {} : { compensate }),
    ...(server?.timeout === undefined ? {} : { timeout: server.timeout }),
  });
}

/** Every pinned MCP tool of a task's `tools` section, as descriptors. */
export function mcpDescriptorsOf(tools: { mcp?: Record<string, McpServer> | undefined; mcpPinned?: McpToolListing[] | undefined }): ToolDescriptor[] {
  const out: ToolDescriptor[] = [];
  for (const listing of tools.mcpPinned ?? []) {
    const server = tools.mcp?.[listing.server];
    // A pinned listing of a server the task does not declare offers nothing.
    if (server === undefined) continue;
    for (const tool of listing.tools) out.push(descriptorOfMcpTool(listing, tool, server));
  }
  return out;
}
