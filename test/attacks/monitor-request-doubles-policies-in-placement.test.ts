/**
 * Attack (h/monplace, issue 17: the monitor's setup read in `placeTask`): the placement's input
 * now carries the task's policy sentences twice, once in `task` and once more in
 * `monitor.sentences` (what `beginMonitoring` was sent in a local activity of its own, whose input
 * never went into history). A task within every documented limit (500 sentences of at most 2 KiB,
 * `task/task-file-limits.ts`) whose policies are about 1 MB, and which starts (its workflow input
 * is about 1.2 MB, under Temporal's 2 MiB), then has a `placeTask` input over 2 MiB: the server
 * refuses the ScheduleActivityTask command, the workflow never places its data plane and ends
 * without a Warden result (Temporal terminates it: no saga, no reason naming the size). On main the
 * same task completes.
 *
 * Expected: the task runs as it did (the monitor's request names no more than the task does, or
 * the placement is sized as a whole, or a task too large to place ends ERR_PAYLOAD_TOO_LARGE).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { jsonBytes } from '../../task/data-refs';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

/** Temporal's default payload limit (the server's limit.blobSize.error). */
const TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024;

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => env?.close());

/** A policy sentence just under the 2 KiB limit: deny reading a list of tables. */
function longSentence(i: number): string {
  const names: string[] = [];
  for (let k = 0; ; k++) {
    const next = `never read table ${[...names, `t${i}x${k}`].join(', ')}`;
    if (next.length > 2000) return `never read table ${names.join(', ')}`;
    names.push(`t${i}x${k}`);
  }
}

describe('a task with many policy sentences on the data flow', () => {
  it('is placed and completes (its placement does not carry the sentences twice)', async () => {
    const policies = Array.from({ length: 500 }, (_, i) => longSentence(i));
    const task = parseTask(
      {
        user: 'ops@example.com',
        intent: 'count words',
        agent: { name: `policy-heavy-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script: [{ tool: 'word-count', args: { text: 'a b c' } }, { final: 'done' }] } },
        tools: {
          builtin: [],
          // A tool with a long source (within its 256 KiB limit): the rest of the task's size.
          custom: [{ name: 'word-count', description: 'Counts words.', input: { type: 'object' }, source: `// ${'x'.repeat(150_000)}\nreturn { words: String(input.text ?? '').split(/\\s+/).filter(Boolean).length };` }],
        },
        grants: { tools: ['word-count'] },
        policies,
        dataFlow: true,
        limits: { deadline: '5m' },
      },
      'policy-heavy.yaml',
      REPO_ROOT,
    );
    // The task fits one payload (so it starts); the task plus its sentences again does not.
    expect(jsonBytes(task)).toBeLessThan(TEMPORAL_PAYLOAD_LIMIT * 0.6);
    expect(jsonBytes(task) + jsonBytes(task.policies)).toBeGreaterThan(TEMPORAL_PAYLOAD_LIMIT);

    const handle = await env.start(task);
    const result = await Promise.race([
      followAgentTask(handle).then(
        (r) => ({ status: r.status, reason: r.reason }),
        (error: unknown) => ({ status: 'no result', reason: String(error) }),
      ),
      new Promise<{ status: string; reason: string }>((resolve) => setTimeout(() => resolve({ status: 'no result', reason: 'still running after 120 s' }), 120_000)),
    ]);
    const described = await handle.describe();
    expect({ ...result, workflow: described.status.name }).toMatchObject({ status: 'completed', workflow: 'COMPLETED' });
  }, 300_000);
});
