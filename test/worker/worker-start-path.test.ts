/**
 * What a worker does before its first step is part of `warden run`'s start-up (issue 17: a run
 * with its own worker adds under 1 s to the task). Work the first step does not need stays off
 * that path, each piece still there when it is needed:
 * - the model providers' SDKs (`openai`, `@anthropic-ai/sdk`) load at a provider driver's first
 *   turn, not with the worker;
 * - a policy engine preparses its policies for cedar-wasm only when asked to decide through Cedar
 *   (`decideWithCedar`): `decide` never reads them, and the parse is cold WebAssembly that each
 *   new worker and sandbox host paid on the first tool call;
 * - the sandbox host boots while the Temporal workers are built (`SandboxClient.boot`), and a
 *   host that cannot start still fails the start;
 * - `warden run` starts its worker at once when no standalone worker record vouches for a live worker
 *   (`hasStandaloneWorkerRecords`: without one no poller can be vouched for; a killed worker's
 *   left-over record counts for nothing).
 *
 * The module cases load code in a fresh Node process and read `require.cache`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { hasStandaloneWorkerRecords, processStartTime, STANDALONE_RECORDS_DIR } from '../../worker/standalone-worker';
import { toolCall } from '../sandbox/sandbox-test-kit';
import { REPO_ROOT } from '../support/warden-test-env';

/** Runs `script` (CommonJS, `root` bound to the repository) in a fresh process (through tsx, both loaders, as bin/warden.js runs the sources); returns its stdout parsed as JSON. */
function inFreshProcess(script: string, tsx = true): unknown {
  const out = execFileSync(process.execPath, [...(tsx ? ['--import', 'tsx'] : []), '-e', `const root = ${JSON.stringify(REPO_ROOT)}; (async () => { ${script} })().catch((e) => { console.error(e); process.exit(1); });`], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 5 * 60_000,
  });
  return JSON.parse(out);
}

const LOADED = (pattern: string) => `Object.keys(require.cache).some((f) => ${pattern}.test(f.slice(root.length + 1)))`;
const PROVIDER_SDKS = String(/^node_modules\/(openai|@anthropic-ai\/sdk)\//);

describe('model drivers', () => {
  it('loading the worker factory loads the Temporal worker but no provider SDK or provider driver', () => {
    const loaded = inFreshProcess(
      `require(root + '/worker/create-warden-worker.ts');` +
        `process.stdout.write(JSON.stringify({ worker: ${LOADED(String(/^node_modules\/@temporalio\/worker\//))}, sdks: ${LOADED(PROVIDER_SDKS)}, drivers: ${LOADED(String(/^drivers\/(openai|anthropic)-driver\./))} }));`,
    );
    expect(loaded).toEqual({ worker: true, sdks: false, drivers: false });
  });

  it.each([
    ['openai-compatible', { driver: 'openai-compatible', id: 'gpt-test', baseUrl: 'http://127.0.0.1:9/v1' }, /^node_modules\/openai\//, 'OpenAIDriver'],
    ['anthropic', { driver: 'anthropic', id: 'claude-test', baseUrl: 'http://127.0.0.1:9' }, /^node_modules\/@anthropic-ai\/sdk\//, 'AnthropicDriver'],
  ])('a %s driver loads its SDK when first used, not when created', (_kind, model, sdk, className) => {
    const seen = inFreshProcess(
      `const { TaskSchema } = require(root + '/task/task-schema.ts');` +
        `const { createDriver, pickDriver } = require(root + '/drivers/create-driver.ts');` +
        `const task = TaskSchema.parse({ user: 'u', intent: 'x', agent: { name: 'a', model: ${JSON.stringify(model)} } });` +
        `const driver = createDriver(task.agent.model, { env: {} });` +
        `const afterCreate = ${LOADED(String(sdk))};` +
        `const picked = await pickDriver(task.agent.model, { env: {} });` +
        `process.stdout.write(JSON.stringify({ afterCreate, afterPick: ${LOADED(String(sdk))}, picked: picked.constructor.name, turn: typeof driver.proposeTurn }));`,
    );
    expect(seen).toEqual({ afterCreate: false, afterPick: true, picked: className, turn: 'function' });
  });

  it('an "mcp-client" model is still refused when its driver is created', () => {
    const seen = inFreshProcess(
      `const { createDriver } = require(root + '/drivers/create-driver.ts');` +
        `let code; try { createDriver({ driver: 'mcp-client' }); } catch (e) { code = e.code; } process.stdout.write(JSON.stringify(code));`,
    );
    expect(seen).toBe('ERR_MODEL_CONFIG');
  });
});

describe('policy engine', () => {
  // A request the foundation pack's Cedar rule denies (its own DENY example).
  const request = `JSON.parse(require('node:fs').readFileSync(root + '/policies/foundation/DENY/drop-table.json', 'utf8')).request`;

  // The bundled packs are validated by the build (prevalidated-policies.ts): run the build's code.
  it.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))('an engine over the bundled packs decides without cedar-wasm; deciding through Cedar loads it and agrees', () => {
    const seen = inFreshProcess(
      `const { loadPolicyEngine } = require(root + '/build/policies/engine/policy-engine.js');` +
        `const engine = loadPolicyEngine({ packs: ['foundation', 'advanced'] });` +
        `const input = ${request};` +
        `const native = engine.decide(input);` +
        `const before = ${LOADED('/cedar-wasm/')};` +
        `const viaCedar = engine.decideWithCedar(input);` +
        `process.stdout.write(JSON.stringify({ before, after: ${LOADED('/cedar-wasm/')}, native: native.decision, cedar: viaCedar.decision, same: JSON.stringify(native.matched.map((m) => m.id).sort()) === JSON.stringify(viaCedar.matched.map((m) => m.id).sort()) }));`,
      false,
    );
    // The probe request must be one a rule denies, or agreement would be vacuous.
    expect(seen).toEqual({ before: false, after: true, native: 'deny', cedar: 'deny', same: true });
  });

  it('a rule Cedar refuses is still refused when the engine is built', () => {
    const seen = inFreshProcess(
      `const { createPolicyEngine } = require(root + '/policies/engine/policy-engine.ts');` +
        `const { loadPolicyEngine } = require(root + '/policies/engine/policy-engine.ts');` +
        `const good = loadPolicyEngine({ packs: [], sentences: ['deny http.fetch'] }).rules[0];` +
        `let message; try { createPolicyEngine([{ ...good, id: 'custom:1', cedar: good.cedar.replace('Warden::Action', 'Nowhere::Action') }]); } catch (e) { message = e.code + ': ' + e.message; }` +
        `process.stdout.write(JSON.stringify(message ?? 'accepted'));`,
    );
    expect(seen).toMatch(/^ERR_POLICY_INVALID: /);
  });
});

describe('sandbox host boot', () => {
  it('boot hands the client back at once; ready settles after the probe and calls then run', async () => {
    const { client, ready } = SandboxClient.boot();
    try {
      expect(client.stats.hostStarts).toBe(1);
      await ready;
      const response = await client.run(toolCall('return input + 1;', 41));
      expect(response).toMatchObject({ ok: true, output: 42 });
    } finally {
      await client.close();
    }
  });

  it('a host that cannot start rejects ready with ERR_SANDBOX_CRASHED and leaves the client closed', async () => {
    const { client, ready } = SandboxClient.boot({ env: { PATH: process.env.PATH, NODE_OPTIONS: '--require /nonexistent/warden-no-such-module.js' } });
    await expect(ready).rejects.toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });
    await expect(client.run(toolCall('return 1;'))).rejects.toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });
  });
});

describe('standalone worker records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-records-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // A record of a process: `pid` and `startTime` as written, 0600 unless `mode` says otherwise.
  const record = (state: string, nonce: string, fields: Record<string, unknown>, mode = 0o600) => {
    mkdirSync(join(state, STANDALONE_RECORDS_DIR), { recursive: true, mode: 0o700 });
    writeFileSync(join(state, STANDALONE_RECORDS_DIR, `${nonce}.json`), JSON.stringify({ ...fields, nonce }), { mode });
  };
  const live = () => ({ pid: process.pid, startTime: processStartTime(process.pid)! });
  // A pid that is not running: a child that has exited and been reaped.
  const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;

  it.each<[string, (state: string) => void, boolean]>([
    ['no state folder', () => undefined, false],
    ['no records folder', (state) => mkdirSync(state), false],
    ['an empty records folder', (state) => mkdirSync(join(state, STANDALONE_RECORDS_DIR), { recursive: true }), false],
    ['only a temporary or foreign file', (state) => (mkdirSync(join(state, STANDALONE_RECORDS_DIR), { recursive: true }), writeFileSync(join(state, STANDALONE_RECORDS_DIR, `${'a'.repeat(32)}.tmp`), '{}'), writeFileSync(join(state, STANDALONE_RECORDS_DIR, 'notes.json'), '{}')), false],
    ['a record of a live worker (this process)', (state) => record(state, 'b'.repeat(32), live()), true],
    [
      'a record of a live worker, the state folder named through a link',
      (state) => {
        const real = `${state}-real`;
        record(real, 'c'.repeat(32), live());
        symlinkSync(real, state);
      },
      true,
    ],
    // A worker killed before its clean-up (SIGKILL, a crash) leaves its record: it vouches for nothing.
    ['only a record of a dead worker', (state) => record(state, 'd'.repeat(32), { pid: Number(deadPid), startTime: '1' }), false],
    ['only a record whose pid was reused (start time differs)', (state) => record(state, 'e'.repeat(32), { pid: process.pid, startTime: `${live().startTime}1` }), false],
    ['only a malformed record', (state) => record(state, 'f'.repeat(32), { pid: 'x' }), false],
    ['only a record open to others', (state) => record(state, '1'.repeat(32), live(), 0o644), false],
    ['only a record under another nonce than its name', (state) => (record(state, '2'.repeat(32), live()), writeFileSync(join(state, STANDALONE_RECORDS_DIR, `${'3'.repeat(32)}.json`), JSON.stringify({ ...live(), nonce: '2'.repeat(32) }), { mode: 0o600 }), rmSync(join(state, STANDALONE_RECORDS_DIR, `${'2'.repeat(32)}.json`))), false],
    ['a dead worker\'s record beside a live one', (state) => (record(state, '4'.repeat(32), { pid: Number(deadPid), startTime: '1' }), record(state, '5'.repeat(32), live())), true],
  ])('%s', (what, make, expected) => {
    const state = join(dir, what.replace(/\W+/g, '-'));
    make(state);
    expect(hasStandaloneWorkerRecords(state)).toBe(expected);
  });
});
