/**
 * Fixed finding (issue 17 start-up change, e3f56f4, drivers/create-driver.ts): a provider driver's module
 * and SDK (`openai`, `@anthropic-ai/sdk`) now load at the driver's first turn. When that load fails
 * (the package missing from the install, a module that throws while loading), the turn rejects
 * with the loader's bare `Error` (`MODULE_NOT_FOUND`, no Warden code): the activity reports it as
 * `ERR_UNKNOWN`, retryable, so every task on that worker is retried three times and fails
 * `ERR_UNKNOWN` at its first turn. Before the change the worker itself failed to start. It fails
 * closed and no key is in the message (checked here too); what is wrong is the error: it should be
 * a `ModelError` `ERR_MODEL_CONFIG`, not retryable (retrying cannot install a package), naming the
 * driver and the package.
 *
 * Fixed: `loadDriverModule` in drivers/create-driver.ts. Table: each provider driver kind × the SDK
 * missing or throwing while it loads (its message holding the API key, which must not be quoted).
 *
 * Real parts: a fresh Node process whose module loader cannot load the provider SDKs
 * (fixtures/block-provider-sdks.cjs), the real createDriver.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const KEY = 'sk-warden-test-0123456789abcdef';

const MODELS = [
  ['openai-compatible', { driver: 'openai-compatible', id: 'gpt-test', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'PROVIDER_TEST_KEY' }, 'openai'],
  ['openai', { driver: 'openai', id: 'gpt-test', apiKeyEnv: 'PROVIDER_TEST_KEY' }, 'openai'],
  ['anthropic', { driver: 'anthropic', id: 'claude-test', baseUrl: 'http://127.0.0.1:9', apiKeyEnv: 'PROVIDER_TEST_KEY' }, '@anthropic-ai/sdk'],
] as const;
const ROWS = MODELS.flatMap(([kind, model, pkg]) => (['missing', 'throwing'] as const).map((failure) => [kind, failure, model, pkg] as const));

it.each(ROWS)('a %s driver whose SDK is %s fails its turn with ERR_MODEL_CONFIG naming the package, not retryable, no key', (kind, failure, model, pkg) => {
  const script =
    `const { TaskSchema } = require(${JSON.stringify(join(REPO_ROOT, 'task', 'task-schema.ts'))});` +
    `const { createDriver } = require(${JSON.stringify(join(REPO_ROOT, 'drivers', 'create-driver.ts'))});` +
    `const task = TaskSchema.parse({ user: 'u', intent: 'x', agent: { name: 'a', model: ${JSON.stringify(model)} } });` +
    `createDriver(task.agent.model, { env: { PROVIDER_TEST_KEY: ${JSON.stringify(KEY)} } }).proposeTurn({ task, turn: 0, steps: [], tools: [], subagents: [] })` +
    `.then(() => process.stdout.write('null'), (e) => process.stdout.write(JSON.stringify({ name: e.constructor.name, code: e.code, retryable: e.retryable === true, message: String(e.message) })));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--require', join(__dirname, 'fixtures', 'block-provider-sdks.cjs'), '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', WARDEN_TEST_SDK_FAILURE: failure, WARDEN_TEST_SDK_ERROR: `SDK init failed with key ${KEY}` },
    timeout: 5 * 60_000,
  });
  const seen = JSON.parse(out) as { name: string; code: string; retryable: boolean; message: string } | null;
  expect(seen).not.toBeNull();
  expect(seen!.message).not.toContain(KEY);
  expect({ name: seen!.name, code: seen!.code, retryable: seen!.retryable, namesPackage: seen!.message.includes(pkg), namesDriver: seen!.message.includes(`"${kind}"`), saysWhy: seen!.message.includes(failure === 'missing' ? 'not installed' : 'SDK init failed') }).toEqual({
    name: 'ModelError',
    code: 'ERR_MODEL_CONFIG',
    retryable: false,
    namesPackage: true,
    namesDriver: true,
    saysWhy: true,
  });
  expect(seen!.message).not.toContain('Require stack');
});
