/**
 * Defense in depth for terminal views (terminal-text.ts `terminalWriter`, cli/cli-io.ts
 * `processIo`): on a terminal, `warden` writes no control character but `\n` and `\t`, whatever a
 * view forgot to escape; piped, it writes exactly what the view wrote, byte for byte (JSON, JSONL
 * and canonical JSON someone hashes stay exact).
 *
 * Each view of the table runs as `node bin/warden.js` twice: with stdout and stderr on real
 * pseudo-terminals (test/support/pseudo-terminal.ts), and on pipes. The views print others' text:
 * a forged token's claims, and a task whose reason quotes a hosted model's error message (mocked
 * on loopback) holding cursor moves, erase and a title sequence (ESC), a C1 CSI (U+009B) and a
 * right-to-left override. `--json` writes them as `\uXXXX` escapes (terminalJson: JSON.stringify
 * alone escapes only C0; before, the writer alone kept them from the terminal and a pipe carried
 * them, test/cli/piped-json-escapes-controls.test.ts); an operator's mistyped task id, quoted in an error, reached the terminal raw
 * too before error messages were escaped (test/cli/terminal-output-scan.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import { terminalText } from '../../terminal-text';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../support/fake-openai-server';
import { jsonValues } from '../support/json-values';
import { runTaskWithModelError } from '../support/model-error-task';
import { runInTerminal, runPiped } from '../support/pseudo-terminal';
import { wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** Every character that may not reach a terminal: each C0 control but `\n` and `\t`, DEL, each C1 control, U+2028/9, bidi controls. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
/** A forged verdict line, then everything after it concealed. */
const FORGED = 'x\nVALID\n\u001b[8m';
/** What the hosted model answers: escape sequences, a C1 CSI and a right-to-left override in its error message. */
const MODEL_MESSAGE = 'bad request\u001b[1A\u001b[2K\u001b[1Gpayroll-sync  COMPLETED\u001b]0;title\u0007 \u009b2J \u202edetaler';

/** What bin/warden.js says on a terminal before running changed sources through tsx (a checkout built before the change). */
const SOURCES_NOTICE = 'warden: the sources changed since the last build (npm run build); running them through tsx\n';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const WARDEN = [process.execPath, join(REPO_ROOT, 'bin', 'warden.js')];

/** What `warden <argv>` writes when its io is this process's (no stream, no terminal): the view itself. */
async function viewText(argv: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env };
  const code = await main(argv, io);
  return { stdout, stderr, code };
}

describe('warden on a terminal writes no control but \\n and \\t; piped, it writes the view byte for byte', () => {
  let env: WardenTestEnv;
  let model: FakeOpenAIServer;
  let keysDir: string;
  let workflowId: string;
  beforeAll(async () => {
    keysDir = await mkdtemp(join(tmpdir(), 'warden-tty-output-'));
    await viewText(['keys', 'jwks'], { WARDEN_STATE_DIR: keysDir });
    model = await startFakeOpenAIServer();
    env = await startWardenTestEnv();
    const result = await runTaskWithModelError(env, model, MODEL_MESSAGE);
    // The precondition: the reason quotes the model's message, controls and all.
    expect(result.status, result.reason).toBe('failed');
    expect(result.reason).toContain('\u001b[1A\u001b[2K');
    expect(result.reason).toContain('\u009b2J \u202e');
    workflowId = result.workflowId;
  }, 300_000);
  afterAll(async () => {
    await env?.close();
    await model?.close();
    await rm(keysDir, { recursive: true, force: true });
  });

  const forgedToken = () =>
    `${b64({ alg: 'EdDSA', typ: 'warden-call+jwt', kid: FORGED, [FORGED]: 1 })}.${b64({ iss: FORGED, sub: FORGED, aud: 'fs.read', jti: FORGED, iat: 1, exp: 2, scope: [FORGED], lineage: [FORGED] })}.c2ln`;

  /**
   * [view, argv, state folder, whether the view itself writes controls]: argv is a function, the
   * task id is known only once the task ran. The views that write controls are those the writer
   * alone keeps from the terminal.
   */
  const VIEWS: [string, () => string[], () => string, boolean][] = [
    ['credentials verify of a forged token', () => ['credentials', 'verify', forgedToken()], () => keysDir, false],
    ['credentials verify --json of a forged token', () => ['credentials', 'verify', '--json', forgedToken()], () => keysDir, false],
    ['status of a task whose reason holds escape sequences', () => ['status', workflowId], () => TEST_STATE_DIR, false],
    ['status --json of that task (C1 and bidi controls escaped in JSON strings)', () => ['status', '--json', workflowId], () => TEST_STATE_DIR, false],
    ['logs of that task', () => ['logs', workflowId], () => TEST_STATE_DIR, false],
    ['logs --json of that task (JSONL)', () => ['logs', '--json', workflowId], () => TEST_STATE_DIR, false],
    ['status of a task id the operator typed with escape sequences (quoted in the error)', () => ['status', 'no-such-task\u001b[8m\u009b2J'], () => TEST_STATE_DIR, false],
  ];

  it.each(VIEWS)('%s', async (_view, argvOf, stateDirOf, viewWritesControls) => {
    const argv = argvOf();
    const childEnv = wardenProcessEnv(stateDirOf());
    const view = await viewText(argv, childEnv);
    expect(CONTROL.test(view.stdout + view.stderr), view.stdout + view.stderr).toBe(viewWritesControls);
    const piped = await runPiped([...WARDEN, ...argv], childEnv);
    const terminal = await runInTerminal([...WARDEN, ...argv], childEnv);

    // Piped: exactly what the view wrote.
    expect(piped.stdout.equals(Buffer.from(view.stdout)), piped.stdout.toString()).toBe(true);
    expect(piped.stderr.equals(Buffer.from(view.stderr)), piped.stderr.toString()).toBe(true);
    expect(piped.code).toBe(view.code);

    // On a terminal: the same, each control but \n and \t shown escaped; nothing else changed.
    const tty = { stdout: terminal.stdout.toString(), stderr: terminal.stderr.toString().replace(SOURCES_NOTICE, '') };
    expect(tty.stdout).not.toMatch(CONTROL);
    expect(tty.stderr).not.toMatch(CONTROL);
    expect(tty.stdout).toBe(terminalText(view.stdout));
    expect(tty.stderr).toBe(terminalText(view.stderr));
    expect(terminal.code).toBe(view.code);
    if (argv.includes('--json')) {
      // JSON on a terminal is the same JSON value: the escapes are JSON's own.
      expect(jsonValues(tty.stdout)).toEqual(jsonValues(view.stdout));
    }
  }, 120_000);
});
