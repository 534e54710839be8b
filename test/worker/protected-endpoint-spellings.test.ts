/**
 * Attack: an agent reaches the Temporal frontend's HTTP API (or the web UI, which proxies the same
 * API) under a spelling of 127.0.0.1 that Warden's protected-endpoint check does not know but the
 * URL parser does: hexadecimal and octal IPv4 forms (`0x7f.1`, `0177.1`, `0x7f000001`). The grant
 * check compares the text (`permissions/warden-resources.ts` knows `127.x`, decimal `2130706433`,
 * `localhost`, `::1`...), the http capability canonicalises it with WHATWG URL to `127.0.0.1` and
 * connects. (The built-in http.fetch happens to fail: its credential scope names the canonical
 * host, which the grant's text does not match. A user tool handed the http capability is scoped
 * `http.fetch:ANY:<host as written>` and goes through.) From there the agent lists (and could start, signal or cancel) every workflow of the
 * namespace: other users' tasks, their histories, new tasks with grants of its choosing.
 *
 * Expected: every spelling that reaches a protected endpoint is refused (ERR_RESOURCE_PROTECTED)
 * before the task starts; compare the canonical host (as the http capability sees it), not the text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEmbeddedPorts } from '../../temporal/temporal-config';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
const { httpPort, uiPort } = loadEmbeddedPorts(process.env);

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

describe.each([
  ['0x7f.1', httpPort, "the frontend's HTTP API"],
  ['0177.1', httpPort, "the frontend's HTTP API"],
  ['0x7f000001', httpPort, "the frontend's HTTP API"],
  ['0x7f.0.0.1', uiPort, 'the web UI'],
])('a grant of %s:%i (%s)', (spelling, port, _what) => {
  it('is refused before the task starts, and nothing of the namespace reaches the agent', async () => {
    const host = `${spelling}:${port}`;
    const url = `http://${host}/api/v1/namespaces/default/workflows`;
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: `list what is at ${url}`,
      agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'lister', args: { url } }, { final: 'done' }] } },
      tools: {
        builtin: ['http.fetch'],
        // A user tool handed the http capability: its credential names the granted host as written.
        custom: [{ name: 'lister', description: 'fetches a page', input: { type: 'object' }, capabilities: ['http.fetch'], source: 'return await warden.http.fetch(input.url);' }],
      },
      grants: { tools: ['http.fetch', 'lister'], hosts: [host] },
      resources: { hosts: [host] },
    });
    const output = JSON.stringify(result.steps[0]?.output ?? '');
    expect(output).not.toContain('executions');
    expect(result.reason ?? `status ${result.status}, fetch answered ${output.slice(0, 80)}`).toMatch(/ERR_RESOURCE_PROTECTED/);
  });
});
