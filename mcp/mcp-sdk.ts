/**
 * The official MCP SDK's runtime parts, loaded on first use: the SDK and its protocol schemas take
 * about half a second to load, which a worker or CLI command that never speaks MCP should not pay
 * at start-up. Types are imported normally; only values go through here.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as ClientModule from '@modelcontextprotocol/sdk/client/index.js';
import type * as HttpClientModule from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type * as ServerModule from '@modelcontextprotocol/sdk/server/index.js';
import type * as HttpServerModule from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type * as StdioServerModule from '@modelcontextprotocol/sdk/server/stdio.js';
import type * as StdioModule from '@modelcontextprotocol/sdk/shared/stdio.js';
import type * as TypesModule from '@modelcontextprotocol/sdk/types.js';

export const mcpSdk = {
  client: () => require('@modelcontextprotocol/sdk/client/index.js') as typeof ClientModule,
  httpClient: () => require('@modelcontextprotocol/sdk/client/streamableHttp.js') as typeof HttpClientModule,
  server: () => require('@modelcontextprotocol/sdk/server/index.js') as typeof ServerModule,
  httpServer: () => require('@modelcontextprotocol/sdk/server/streamableHttp.js') as typeof HttpServerModule,
  stdioServer: () => require('@modelcontextprotocol/sdk/server/stdio.js') as typeof StdioServerModule,
  stdio: () => require('@modelcontextprotocol/sdk/shared/stdio.js') as typeof StdioModule,
  types: () => require('@modelcontextprotocol/sdk/types.js') as typeof TypesModule,
};
