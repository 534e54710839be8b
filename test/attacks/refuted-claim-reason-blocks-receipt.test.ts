/**
 * Fixed finding, now a regression test (severity: medium; issue 17 area, lone-surrogate handling: the class of the
 * entry-point fix, text Warden cuts itself).
 *
 * A task whose agent made a false claim ends `refuted` with a reason Warden writes
 * (attestation/claim-outcome.ts `refutationReason`): `... claimed "<first 120 UTF-16 units of the
 * claim's description>", but <first 200 of the verifier's reason>`. The cut is by UTF-16 index,
 * so when the claim's description has a character outside the BMP (an emoji) across unit 120, the
 * reason ends on a lone high surrogate, although the agent's words were well-formed when they
 * entered. The signed receipt puts `result.reason` in its in-toto Statement, which is canonical
 * JSON, which refuses lone surrogates: `warden receipt` of that task fails.
 *
 * So an agent that lies can, by where it puts one emoji in its false claim (here in the claimed
 * file's path), keep the user from getting the signed receipt of its refutation: the one task
 * whose receipt matters most. Safe behaviour asserted: the reason is well-formed and
 * `warden receipt` writes the receipt (exit 0).
 *
 * Fixed: every cut of such text goes through cut-text.ts, which never splits a pair (at most N
 * units, one fewer rather than half a character).
 *
 * Real parts: `warden run` (real Temporal server from test/support, real worker), the scripted
 * driver as the agent, then `warden receipt` in this process.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import type { TaskResult } from '../../task/task-run';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const execFileAsync = promisify(execFile);

function env(): NodeJS.ProcessEnv {
  const { address } = testTemporalAddress();
  return { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() };
}

async function wardenProcess(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), ...args], { cwd, env: env(), maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: env() };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

describe('a refuted claim with an emoji across the reason cut', () => {
  it('still gets a well-formed reason and a signed receipt', async () => {
    const dir = makeTempDir('refuted-emoji-receipt');
    fs.mkdirSync(join(dir, 'ws'));
    // The claim's description is `<path> contains "<text>"`: path 101 units, then ` contains "`
    // (11), so the text starts at unit 112 and the emoji after "all bad" starts at unit 119.
    const path = `${'p'.repeat(91)}/report.md`;
    const text = 'all bad\u{1F600}';
    fs.writeFileSync(
      join(dir, 'task.yaml'),
      `user: ada@example.com
intent: write the report
agent:
  name: writer
  model:
    driver: scripted
    script:
      - tool: fs.write
        args: { path: ${JSON.stringify(path)}, content: "all good" }
      - final: report written
        claims:
          - { kind: file.contains, path: ${JSON.stringify(path)}, text: ${JSON.stringify(text)} }
tools: { builtin: [fs.write] }
grants: { tools: [fs.write] }
resources: { workspace: ws }
`,
    );
    const run = await wardenProcess(['run', 'task.yaml', '--json'], dir);
    const result = JSON.parse(run.stdout) as TaskResult;
    expect(result.status, run.stderr).toBe('refuted');
    const receiptFile = join(dir, 'receipt.json');
    const out = await warden(['receipt', result.workflowId, '--out', receiptFile]);
    expect(out.code, out.stderr).toBe(0);
    expect(fs.existsSync(receiptFile)).toBe(true);
    expect(isWellFormed(result.reason ?? '')).toBe(true);
  }, 300_000);
});
