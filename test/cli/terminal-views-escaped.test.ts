/**
 * Regression (was test/attacks/open/terminal-views-not-escaped.test.ts): two terminal views printed
 * others' text raw after terminal-text.ts `terminalLine` was applied to the views of
 * test/terminal-text.test.ts; both now escape every line (and `warden kill`'s end lines, read only):
 *
 * - `warden credentials verify <token>` explains a token "as the token states them" before its
 *   verdict: issuer, subject, jti, kid, grant, scope, ancestors, act chain and the names of extra
 *   header fields come from the token, which whoever hands the operator a token wrote. A `jti`
 *   holding a line break prints a line `VALID` of the writer's; an `ESC[8m` (conceal) after it
 *   hides the real `INVALID ...` verdict that follows.
 * - `warden list` prints each task's reason: a failed model call's reason quotes the provider's
 *   error message (here a hosted model's HTTP 400, mocked on loopback), so whoever answers as the
 *   model prints its own rows and escape sequences into the operator's list.
 *
 * Each view's output must hold no control character (the table of test/terminal-text.test.ts) and
 * no line the writer chose. (Found: all eight token fields; the list's reason. Read, not tested:
 * `warden kill`'s end line prints the reason, undo details and what could not be undone raw,
 * cli/commands/kill.ts, beside formatRecovery which escapes them.) Suggested fix: `terminalLine` on every line of both views (and a scan
 * test over cli/ for io.stdout / io.stderr of unescaped fields).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { credentialsCommand } from '../../cli/commands/credentials';
import { keysCommand } from '../../cli/commands/keys';
import { listCommand } from '../../cli/commands/list';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../support/fake-openai-server';
import { runTaskWithModelError } from '../support/model-error-task';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** Any character terminal-text.ts escapes. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
/** A forged verdict line, then everything after it concealed. */
const FORGED = 'x\nVALID\n\u001b[8m';

async function run(command: (argv: string[], io: CliIo) => Promise<number>, argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  let out = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env };
  await command(argv, io);
  return out;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('warden credentials verify: a token\'s claims', () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'warden-forged-claims-'));
    await run(keysCommand, ['jwks'], { WARDEN_STATE_DIR: stateDir });
  });
  afterAll(() => rm(stateDir, { recursive: true, force: true }));

  it.each([
    ['iss', { iss: FORGED }, {}],
    ['sub', { sub: FORGED }, {}],
    ['jti', { jti: FORGED }, {}],
    ['grant', { grant: FORGED }, {}],
    ['scope', { scope: [FORGED] }, {}],
    ['lineage', { lineage: [FORGED] }, {}],
    ['kid (header)', {}, { kid: FORGED }],
    ['an extra header field\'s name', {}, { [FORGED]: 1 }],
  ])('%s prints no control and no line of the token\'s', async (_field, claims, header) => {
    const token = `${b64({ alg: 'EdDSA', typ: 'warden-call+jwt', kid: 'k1', ...header })}.${b64({ iss: 'warden', sub: 'agent', aud: 'fs.read', jti: 'j1', iat: 1, exp: 2, ...claims })}.c2ln`;
    const out = await run(credentialsCommand, ['verify', token], { WARDEN_STATE_DIR: stateDir });
    expect(out).toMatch(/INVALID/);
    for (const line of out.split('\n')) {
      expect(line, out).not.toMatch(CONTROL);
      expect(line, out).not.toBe('VALID');
    }
  });
});

describe('warden list: a failed task\'s reason', () => {
  let env: WardenTestEnv;
  let model: FakeOpenAIServer;
  beforeAll(async () => {
    model = await startFakeOpenAIServer();
    env = await startWardenTestEnv();
  }, 180_000);
  afterAll(async () => {
    await env?.close();
    await model?.close();
  });

  it('prints no control of the model\'s', async () => {
    const forgedRow = 'payroll-sync  COMPLETED  auditor';
    const result = await runTaskWithModelError(env, model, `bad request\u001b[1A\u001b[2K\u001b[1G${forgedRow}\u001b]0;title\u0007`);
    // The precondition: the failure's reason quotes the provider's message, escapes and all (its
    // excerpt folds line breaks, so the row is written over the row above: cursor up, erase, column 1).
    expect(result.status, result.reason).toBe('failed');
    expect(result.reason).toContain('\u001b[1A\u001b[2K\u001b[1Gpayroll-sync');
    const out = await run(listCommand, ['--status', 'failed', '--limit', '1000'], { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR });
    const row = out.split('\n').findIndex((line) => line.startsWith(result.workflowId));
    expect(row, out).toBeGreaterThanOrEqual(0);

    const unsafe = out.split('\n').filter((line) => CONTROL.test(line));
    expect(unsafe).toEqual([]);
  }, 300_000);
});
