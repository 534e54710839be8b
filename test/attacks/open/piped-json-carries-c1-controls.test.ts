/**
 * Open finding (s12, atk12): `--json` output that is piped (`| tee`, `| less -R`, `> file` then
 * `cat`, a CI log viewer) carries C1 controls, U+2028/9 and bidi overrides of others' text raw.
 *
 * h/ttyview escapes every control but \n and \t when a stream is a terminal (`terminalWriter`) and
 * writes piped output byte for byte. JSON.stringify escapes only C0 inside strings, so a model's
 * error text quoted in a task's reason keeps U+009B (CSI: xterm and others act on it as ESC [ in
 * UTF-8 mode, `\u009b2J` clears the screen) and U+202E in `warden status --json` and
 * `warden logs --json`. `warden status --json <id> | tee status.json` puts them on the
 * operator's terminal through tee; `cat status.json` later does the same. The claim "no text an
 * agent, model, tool ... wrote can move the cursor ... in any command, piped or TTY" does not hold
 * for these. (The human views are safe piped: terminalLine escapes every line.)
 *
 * Escaping those characters as `\u009b` keeps the JSON value identical (tty-output.test.ts checks
 * the same for the terminal), so nothing reading the JSON changes. Canonical JSON someone hashes
 * (receipts, DSSE) is a different output and can stay byte for byte.
 *
 * Real parts: a hosted model mocked on loopback answering HTTP 400 with the message, a real task on
 * the test Temporal server, `node bin/warden.js` on pipes.
 *
 * Suggested fix: one JSON writer for the views' `--json` (`JSON.stringify(...)` then
 * `terminalText`-style escape of U+007F-U+009F, U+2028/9 and the bidi controls, which JSON.stringify
 * leaves raw), used by status, logs, list, run --json and every other JSON view.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../../support/fake-openai-server';
import { runTaskWithModelError } from '../../support/model-error-task';
import { runPiped } from '../../support/pseudo-terminal';
import { wardenProcessEnv } from '../../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../../support/warden-test-env';

/** What a terminal acts on (or reorders by) that JSON.stringify leaves raw: DEL, C1, U+2028/9, bidi controls. */
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const MODEL_MESSAGE = 'bad request \u009b2J\u009b1;1H forged line \u202edetaler';

let env: WardenTestEnv;
let model: FakeOpenAIServer;
let workflowId: string;

beforeAll(async () => {
  model = await startFakeOpenAIServer();
  env = await startWardenTestEnv();
  const result = await runTaskWithModelError(env, model, MODEL_MESSAGE);
  expect(result.status, result.reason).toBe('failed');
  expect(result.reason).toContain('\u009b2J');
  workflowId = result.workflowId;
}, 300_000);

afterAll(async () => {
  await env?.close();
  await model?.close();
});

it.each([
  ['status --json', () => ['status', '--json', workflowId]],
  ['logs --json', () => ['logs', '--json', workflowId]],
])('warden %s on a pipe writes no C1 or bidi control of the model\'s', async (_view, argvOf) => {
  const piped = await runPiped([process.execPath, join(REPO_ROOT, 'bin', 'warden.js'), ...argvOf()], wardenProcessEnv(TEST_STATE_DIR));
  const out = piped.stdout.toString('utf8');
  // The view did print the reason (escaped or not); its exit code is the task's (failed).
  expect(out, piped.stderr.toString()).toMatch(/bad request/);
  expect(out).not.toMatch(RAW_IN_JSON);
}, 120_000);
