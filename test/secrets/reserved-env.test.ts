/**
 * Regression for attack 11 finding 12: a task file could name any worker environment variable
 * in `tools.mcp.<server>.env`, `bearerTokenEnv` or a model's `apiKeyEnv` (and `${env:NAME}` in
 * `resources.secrets`) and so send the worker's own secrets (WARDEN_DATABASE_URL, Temporal TLS
 * keys) to a server or URL of its choosing.
 *
 * The kind: Warden's own variables (WARDEN_*, TEMPORAL_*, any case) are refused in every field
 * that names one, when the task file is read; the worker's deny list (WARDEN_ENV_DENY) is refused
 * where each of those fields is read.
 */
import { describe, expect, it } from 'vitest';
import { readApiKey } from '../../drivers/provider-client';
import { McpConnection } from '../../mcp/mcp-connection';
import { McpHttpServerSchema, McpStdioServerSchema } from '../../mcp/mcp-server-config';
import { deniedEnvReason, reservedEnvReason } from '../../secrets/reserved-env';
import { resolveOutboundSecrets } from '../../secrets/resolve-outbound-secrets';
import { parseTask } from '../../task/load-task-file';
import { testStartContext } from '../mcp/mcp-test-kit';

const base = { user: 'u@example.com', intent: 'i', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'done' }] } } };

/** Each field of a task file that names a worker variable, holding `name`. */
const FIELDS: [string, (name: string) => Record<string, unknown>][] = [
  ['tools.mcp.<server>.env', (name) => ({ tools: { mcp: { search: { command: 'node', args: ['s.js'], env: [name] } } } })],
  ['tools.mcp.<server>.bearerTokenEnv', (name) => ({ tools: { mcp: { tickets: { url: 'http://127.0.0.1:8931/mcp', bearerTokenEnv: name } } } })],
  ['agent.model.apiKeyEnv (openai)', (name) => ({ agent: { name: 'a', model: { driver: 'openai', id: 'gpt-4.1-mini', apiKeyEnv: name } } })],
  ['agent.model.apiKeyEnv (anthropic)', (name) => ({ agent: { name: 'a', model: { driver: 'anthropic', id: 'claude-sonnet-4-5', apiKeyEnv: name } } })],
  ['agent.model.apiKeyEnv (openai-compatible)', (name) => ({ agent: { name: 'a', model: { driver: 'openai-compatible', id: 'l', baseUrl: 'http://127.0.0.1:1/v1', apiKeyEnv: name } } })],
  ['resources.secrets ${env:NAME}', (name) => ({ resources: { hosts: ['api.example.com'], secrets: { 'api.example.com': { authorization: `Bearer \${env:${name}}` } } } })],
];

describe("Warden's own environment variables in a task file", () => {
  const cases = FIELDS.flatMap(([field, make]) => ['WARDEN_DATABASE_URL', 'TEMPORAL_TLS_KEY', 'warden_signing_key', 'Temporal_Address'].map((name) => [field, name, make] as const));
  it.each(cases)('%s naming %s is refused when the file is read, naming the variable', (_field, name, make) => {
    expect(() => parseTask({ ...base, ...make(name) }, 'task.yaml', '/tmp')).toThrow(new RegExp(`${name} is one of Warden's own variables`));
  });

  it.each(FIELDS)('%s naming an ordinary variable is accepted', (_field, make) => {
    expect(() => parseTask({ ...base, ...make('SEARCH_API_KEY') }, 'task.yaml', '/tmp')).not.toThrow();
  });
});

describe("the worker's deny list (WARDEN_ENV_DENY), where each field is read", () => {
  const env = { WARDEN_ENV_DENY: 'PGPASSWORD, AWS_*', PGPASSWORD: 'pg-secret', AWS_SECRET_ACCESS_KEY: 'aws-secret', OK_KEY: 'fine' };

  it.each([
    ['PGPASSWORD', true],
    ['pgpassword', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['WARDEN_ENV_DENY', true],
    ['OK_KEY', false],
    ['AWS', false],
  ])('%s denied: %s', (name, denied) => {
    expect(deniedEnvReason(name, env) !== undefined).toBe(denied);
  });

  it('a model API key', () => {
    expect(() => readApiKey('m', 'AWS_SECRET_ACCESS_KEY', env)).toThrow(/deny list/);
    expect(readApiKey('m', 'OK_KEY', env)).toBe('fine');
  });

  it('an MCP stdio server env and an HTTP server bearer token', async () => {
    const stdio = McpStdioServerSchema.parse({ command: 'node', args: ['-e', ''], env: ['PGPASSWORD'], workspace: 'none' });
    await expect(McpConnection.open('s', stdio, testStartContext({ env }))).rejects.toThrow(/env PGPASSWORD is on this worker's deny list/);
    const http = McpHttpServerSchema.parse({ url: 'http://127.0.0.1:9/mcp', bearerTokenEnv: 'AWS_SECRET_ACCESS_KEY' });
    await expect(McpConnection.open('h', http, testStartContext({ env }))).rejects.toThrow(/bearerTokenEnv AWS_SECRET_ACCESS_KEY is on this worker's deny list/);
  });

  it('a secret header', async () => {
    const config = { 'api.example.com': { authorization: 'Bearer ${env:PGPASSWORD}' } };
    await expect(resolveOutboundSecrets(config, { env, credential: 'jwt', allowedHosts: ['api.example.com'] })).rejects.toThrow(/deny list/);
  });

  it('reserved prefixes need no configuration', () => {
    expect(reservedEnvReason('WARDEN_STATE_DIR')).toMatch(/WARDEN_\*/);
    expect(deniedEnvReason('TEMPORAL_ADDRESS', {})).toMatch(/TEMPORAL_\*/);
  });
});
