/**
 * Open finding (issue 17 fix, `loadDriverModule` in drivers/create-driver.ts): the loader's first
 * line is quoted in ERR_MODEL_CONFIG with the model's API key replaced, but only the exact bytes
 * of the environment variable are replaced (`reason.split(secret)`). A key read from a file or an
 * env-file keeps its line end or padding (`KEY=$(cat key)` strips it, `--env-file`, systemd
 * `EnvironmentFile=` with quotes, a Kubernetes secret written with `echo` do not); an SDK (or a
 * wrapper) that trims the key and quotes it in its load error, or splits it at the line end,
 * leaves the key itself unredacted in the task's failure, which reaches workflow history, custody
 * and `warden run`'s output.
 *
 * Expected: redact every form of the key a message can hold: at least the trimmed key and each
 * non-empty line of it (better: refuse or trim a key with whitespace where it is read, so every
 * scan by `driverSecrets` sees the form that is sent).
 *
 * Real parts: a fresh Node process whose loader throws for the provider SDK
 * (fixtures/block-provider-sdks.cjs), the real createDriver.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const KEY = 'sk-warden-test-0123456789abcdef';
const MODEL = { driver: 'openai', id: 'gpt-test', apiKeyEnv: 'PROVIDER_TEST_KEY' };

it.each([
  ['a line end (read from a file)', `${KEY}\n`],
  ['a CRLF line end', `${KEY}\r\n`],
  ['padding', `  ${KEY}  `],
])('a key with %s is redacted in the SDK load failure', (_what, envValue) => {
  const script =
    `const { TaskSchema } = require(${JSON.stringify(join(REPO_ROOT, 'task', 'task-schema.ts'))});` +
    `const { createDriver } = require(${JSON.stringify(join(REPO_ROOT, 'drivers', 'create-driver.ts'))});` +
    `const task = TaskSchema.parse({ user: 'u', intent: 'x', agent: { name: 'a', model: ${JSON.stringify(MODEL)} } });` +
    `createDriver(task.agent.model, { env: { PROVIDER_TEST_KEY: ${JSON.stringify(envValue)} } }).proposeTurn({ task, turn: 0, steps: [], tools: [], subagents: [] })` +
    `.then(() => process.stdout.write('null'), (e) => process.stdout.write(JSON.stringify({ code: e.code, message: String(e.message) })));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--require', join(__dirname, 'fixtures', 'block-provider-sdks.cjs'), '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    // The SDK quotes the key as it uses it: trimmed.
    env: { ...process.env, NODE_OPTIONS: '', WARDEN_TEST_SDK_FAILURE: 'throwing', WARDEN_TEST_SDK_ERROR: `SDK init failed: invalid API key ${envValue.trim()} (expected sk-proj-...)` },
    timeout: 5 * 60_000,
  });
  const seen = JSON.parse(out) as { code: string; message: string } | null;
  expect(seen?.code).toBe('ERR_MODEL_CONFIG');
  expect(seen!.message).not.toContain(KEY);
});
