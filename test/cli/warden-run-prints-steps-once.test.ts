/**
 * `warden run` prints each step once: as it runs (stderr), then a summary (stdout) that counts
 * the steps shown and lists only any not shown. Before, every step was printed twice, and the
 * steps of a sub-agent spawned a second time were never shown as they ran (their progress was
 * keyed by agent name, which repeats, instead of by workflow id).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const run = promisify(execFile);

const TASK = `user: alice@example.com
intent: look around, twice through a helper
agent:
  name: boss
  model:
    driver: scripted
    script:
      - tool: fs.list
        args: { path: . }
      - spawn: helper
      - spawn: helper
      - final: done
tools: { builtin: [fs.list] }
grants: { tools: [fs.list], subagents: [helper] }
resources: { workspace: ./ws }
subagents:
  helper:
    intent: look
    agent:
      name: helper
      model:
        driver: scripted
        script:
          - tool: fs.list
            args: { path: . }
          - final: ok
    tools: { builtin: [fs.list] }
    grants: { tools: [fs.list] }
`;

describe('warden run prints each step once', () => {
  it('shows every step as it runs, the twice-spawned sub-agent included, and the summary repeats none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-steps-once-'));
    await mkdir(join(dir, 'ws'));
    await writeFile(join(dir, 'task.yaml'), TASK);
    const port = testTemporalAddress().address.split(':').pop();
    const { stdout, stderr } = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'task.yaml'], {
      cwd: dir,
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port },
    });
    const stepLines = (text: string) => text.split('\n').filter((line) => /^\s+(\[[^\]]+\] )?#\d+ \S+ /.test(line));
    // 3 steps of the task, 1 of each helper: each printed once, as it ran.
    expect(stepLines(stderr).map((l) => l.trim().replace(/ -> .*/, ''))).toEqual(
      expect.arrayContaining(['#0 fs.list {"path":"."}', '#1 spawn:helper {"subagent":"helper"}', '#2 spawn:helper {"subagent":"helper"}']),
    );
    expect(stepLines(stderr).filter((l) => l.includes('[helper] #0 fs.list'))).toHaveLength(2);
    expect(stepLines(stderr)).toHaveLength(5);
    expect(stepLines(stdout), stdout).toEqual([]);
    expect(stdout).toMatch(/^task boss \(.*\): COMPLETED\n {2}model scripted@1, 3 step\(s\), shown on stderr as they ran\n/);
    expect(stdout.match(/sub-agent helper .*: COMPLETED\n {4}model scripted@1, 1 step\(s\), shown on stderr as they ran/g)).toHaveLength(2);
  }, 180_000);
});
