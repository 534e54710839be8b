/**
 * Attack: pass off an attestation as someone else's task's. `warden attest verify --task <id>`
 * accepts an attestation whose `workflow:` subject is `<id>` or starts with `<id>/` (meant for
 * sub-agents), but workflow ids are free text: `warden run --workflow-id <victim>/anything` starts
 * an unrelated task, with another user and intent, whose signed claims then pass as the victim's.
 *
 * Expected: `--task` accepts only the task's own run and the sub-agents Warden started for it
 * (or `warden run` refuses workflow ids that look like a sub-agent of another task).
 *
 * Now `warden run` (and `startAgentTask`, and the worker for a task started another way) refuses a
 * workflow id holding "/" (ERR_WORKFLOW_ID_INVALID, client/workflow-id.ts): the attacker's task
 * cannot be started under such an id, and an attacker's task under any other id does not verify
 * as the victim's.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { sha256Hex } from '../../attestation/in-toto-statement';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { address } = testTemporalAddress();
  const env = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() };
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const VICTIM = `payroll-close-${Date.now()}`;
let resultFile: string;
let jwksFile: string;
let refused: { code: number; stdout: string; stderr: string };

beforeAll(async () => {
  const dir = makeTempDir('attest-prefix');
  fs.mkdirSync(join(dir, 'ws'));
  const text = 'payroll approved\n';
  fs.writeFileSync(
    join(dir, 'task.yaml'),
    `user: mallory@example.com
intent: write a note
agent:
  name: writer
  model:
    driver: scripted
    script:
      - tool: fs.write
        args: { path: approval.txt, content: ${JSON.stringify(text)} }
      - final: done
        claims:
          - { kind: file.sha256, path: approval.txt, sha256: ${sha256Hex(text)} }
tools: { builtin: [fs.write] }
grants: { tools: [fs.write] }
resources: { workspace: ws }
`,
  );
  refused = await warden(['run', join(dir, 'task.yaml'), '--json', '--workflow-id', `${VICTIM}/sub-approver`]);
  const run = await warden(['run', join(dir, 'task.yaml'), '--json', '--workflow-id', `${VICTIM}-sub-approver`]);
  expect(run.code, run.stderr).toBe(0);
  resultFile = join(dir, 'result.json');
  fs.writeFileSync(resultFile, run.stdout);
  const keys = await warden(['keys', 'jwks']);
  expect(keys.code, keys.stderr).toBe(0);
  jwksFile = join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, keys.stdout);
}, 300_000);

describe('warden attest verify --task', () => {
  it("the attacker's task cannot be started under the victim's id and a slash", () => {
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('ERR_WORKFLOW_ID_INVALID');
  });

  it("refuses a signed claim of an unrelated task whose workflow id starts with the victim's id", async () => {
    // The attacker's attestation is genuine for its own run.
    const own = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--task', `${VICTIM}-sub-approver`]);
    expect(own.code, own.stdout + own.stderr).toBe(0);
    // The victim task (never even started) did not make this claim.
    const forged = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--task', VICTIM]);
    expect(forged.code, forged.stdout + forged.stderr).toBe(1);
  });
});
