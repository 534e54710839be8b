/**
 * Regression (s12, was test/attacks/open/piped-json-carries-c1-controls.test.ts, low): `--json`
 * output that is piped (`| tee`, `| less -R`, `> file` then `cat`, a CI log viewer) carried C1
 * controls, U+2028/9 and bidi controls of others' text raw. JSON.stringify escapes only C0 inside
 * strings and `terminalWriter` escapes only on a terminal, so a model's error text quoted in a
 * task's reason kept U+009B (CSI: xterm and others act on it as ESC [ in UTF-8 mode, `\u009b2J`
 * clears the screen) and U+202E in `warden status --json`, `warden logs --json` and
 * `warden list --json`, and `warden status --json <id> | tee status.json` put them on the
 * operator's terminal through tee.
 *
 * Every JSON text the CLI prints now goes through `terminalJson` (terminal-text.ts), which writes
 * each such character as `\uXXXX`: the same JSON value (checked here), byte for byte JSON.stringify's
 * where none occurs (property test in test/terminal-text.test.ts); the scan
 * test/cli/terminal-output-scan.test.ts allows no bare JSON.stringify in what the CLI prints.
 *
 * Real parts: a hosted model mocked on loopback answering HTTP 400 with the message, a real task on
 * the test Temporal server, `node bin/warden.js` on pipes.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../support/fake-openai-server';
import { jsonValues } from '../support/json-values';
import { runTaskWithModelError } from '../support/model-error-task';
import { runPiped } from '../support/pseudo-terminal';
import { wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** What a terminal acts on (or reorders by) that JSON.stringify leaves raw: DEL, C1, U+2028/9, bidi controls. */
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
const MODEL_MESSAGE = 'bad request \u009b2J\u009b1;1H forged line \u202edetaler\u200f 100';

let env: WardenTestEnv;
let model: FakeOpenAIServer;
let workflowId: string;

beforeAll(async () => {
  model = await startFakeOpenAIServer();
  env = await startWardenTestEnv();
  const result = await runTaskWithModelError(env, model, MODEL_MESSAGE);
  expect(result.status, result.reason).toBe('failed');
  expect(result.reason).toContain('\u009b2J');
  expect(result.reason).toContain(MODEL_MESSAGE);
  workflowId = result.workflowId;
}, 300_000);

afterAll(async () => {
  await env?.close();
  await model?.close();
});

it.each([
  ['status --json', () => ['status', '--json', workflowId]],
  ['logs --json', () => ['logs', '--json', workflowId]],
  ['list --json', () => ['list', '--json']],
])('warden %s on a pipe writes no C1 or bidi control of the model\'s, and the same JSON value', async (_view, argvOf) => {
  const piped = await runPiped([process.execPath, join(REPO_ROOT, 'bin', 'warden.js'), ...argvOf()], wardenProcessEnv(TEST_STATE_DIR));
  const out = piped.stdout.toString('utf8');
  // The view did print the reason, escaped.
  expect(out, piped.stderr.toString()).toMatch(/bad request \\u009b2J/);
  expect(out).not.toMatch(RAW_IN_JSON);
  // The value is the model's text, controls and all: what a program reading the JSON gets is unchanged.
  expect(JSON.stringify(jsonValues(out))).toContain(JSON.stringify(MODEL_MESSAGE).slice(1, -1));
}, 120_000);
