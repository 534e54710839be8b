/**
 * A sandbox host booted before its worker (worker/prebooted-sandbox-host.ts; issue 17: `warden
 * run` boots it as it starts). The worker uses it only when it was booted with the options the
 * worker boots its own with, and its tool calls are still verified there (a custom tool runs with
 * its credential); a host booted otherwise, or never taken, is closed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SANDBOX_PROBE_CALL } from '../../sandbox/sandbox-messages';
import { prebootSandboxHost } from '../../worker/prebooted-sandbox-host';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const ONE_CALL = {
  user: 'pat@example.com',
  intent: 'add two numbers',
  agent: { name: 'adder', model: { driver: 'scripted', script: [{ tool: 'add', args: { a: 1, b: 2 } }, { final: 'done' }] } },
  tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
  grants: { tools: ['add'] },
};

describe('the host on its own', () => {
  it('is taken once with the options it was booted with, and answers', async () => {
    const options = { identityStateDir: mkdtempSync(join(tmpdir(), 'warden-preboot-')) };
    const host = prebootSandboxHost(options);
    const taken = await host.take({ ...options });
    expect(taken).toBeDefined();
    await taken!.ready;
    expect(await host.take(options)).toBeUndefined();
    await host.discard(); // the taker owns it now: still open
    expect(await taken!.client.run(SANDBOX_PROBE_CALL)).toMatchObject({ ok: true, output: 'ready' });
    await taken!.client.close();
  }, 120_000);

  it.each([
    ['another state folder', { identityStateDir: '/nonexistent-other' }],
    ['a key source', { identityJwksFile: '/tmp/jwks.json' }],
    ['a shared database', { identityDatabaseUrl: 'postgres://x' }],
  ])('is closed, not handed out, for %s', async (_case, change) => {
    const options = { identityStateDir: mkdtempSync(join(tmpdir(), 'warden-preboot-')) };
    const host = prebootSandboxHost(options);
    expect(await host.take({ ...options, ...change })).toBeUndefined();
    expect(await host.take(options)).toBeUndefined();
  }, 120_000);
});

describe('a worker given a prebooted host', () => {
  let env: WardenTestEnv | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('uses it when booted as the worker boots its own, and a tool call runs there with its credential checked', async () => {
    const host = prebootSandboxHost({ identityStateDir: TEST_STATE_DIR });
    env = await startWardenTestEnv(process.env, { sandboxHost: host });
    const taken = await host.take({ identityStateDir: TEST_STATE_DIR });
    expect(taken).toBeUndefined(); // the worker took it
    const result = await env.runTask(ONE_CALL);
    expect(result.status).toBe('completed');
    expect(result.steps[0]).toMatchObject({ tool: 'add', executed: true, output: 3 });
    expect(env.worker.sandbox.stats.hostStarts).toBe(1);
  }, 600_000);

  it('boots its own when the prebooted one was booted otherwise', async () => {
    const host = prebootSandboxHost({ identityStateDir: mkdtempSync(join(tmpdir(), 'warden-preboot-other-')) });
    env = await startWardenTestEnv(process.env, { sandboxHost: host });
    expect(await host.take({ identityStateDir: TEST_STATE_DIR })).toBeUndefined(); // closed by the worker
    const result = await env.runTask(ONE_CALL);
    expect(result.status).toBe('completed');
  }, 600_000);
});
