/**
 * The start record of a call (recovery/call-starts.ts) and the compensating tool that asks it
 * (recovery/run-compensation.ts `startedOnly`): a compensating tool runs for a call whose start is
 * in doubt only when its tool started, and a call its compensation found not started can never
 * start afterwards. Real files in a temporary folder.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fenceUnstartedCall, markCallStarted, readCallStart } from '../../recovery/call-starts';
import type { Compensation } from '../../recovery/compensation';
import { callStartPathOf } from '../../recovery/recovery-paths';
import { runCompensation } from '../../recovery/run-compensation';

const TASK_KEY = 'task-1';

async function recordOf(callId = 'call-1'): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-call-starts-'));
  return { dir, file: callStartPathOf(dir, TASK_KEY, callId) };
}

describe('the start record', () => {
  it('says started once the tool started, and a later fence finds it so', async () => {
    const { file } = await recordOf();
    expect(await readCallStart(file)).toBeUndefined();
    await markCallStarted(file, 'call-1');
    // Another attempt of the same call.
    await markCallStarted(file, 'call-1');
    expect(await fenceUnstartedCall(file, 'call-1')).toBe('started');
    expect(await readCallStart(file)).toBe('started');
  });

  it('fences a call never started: an attempt that reaches its tool afterwards is refused', async () => {
    const { file } = await recordOf();
    expect(await fenceUnstartedCall(file, 'call-1')).toBe('never');
    expect(await fenceUnstartedCall(file, 'call-1')).toBe('never');
    await expect(markCallStarted(file, 'call-1')).rejects.toMatchObject({ code: 'ERR_TOOL_CANCELLED', retryable: false });
    expect(await readCallStart(file)).toBe('never');
  });

  it('decides once when a start and a fence race: the fence reads what the record holds', async () => {
    for (let i = 0; i < 20; i += 1) {
      const { file } = await recordOf();
      const [mark, fence] = await Promise.allSettled([markCallStarted(file, 'call-1'), fenceUnstartedCall(file, 'call-1')]);
      const held = await readCallStart(file);
      expect(fence).toEqual({ status: 'fulfilled', value: held });
      expect(mark.status).toBe(held === 'started' ? 'fulfilled' : 'rejected');
      // No temporary file is left beside the record.
      expect(await readdir(dirname(file))).toHaveLength(1);
    }
  });

  it('keeps one record per call and task', async () => {
    const { dir } = await recordOf();
    expect(callStartPathOf(dir, TASK_KEY, 'call-1')).not.toBe(callStartPathOf(dir, TASK_KEY, 'call-2'));
    expect(callStartPathOf(dir, TASK_KEY, 'call-1')).not.toBe(callStartPathOf(dir, 'task-2', 'call-1'));
  });
});

describe('a compensating tool for a call whose start is in doubt', () => {
  const compensation: Compensation = {
    kind: 'tool',
    tool: 'release',
    forTool: 'reserve',
    callId: 'call-1',
    input: { compensationId: 'release:call-1', original: { tool: 'reserve', args: { item: 'tea' }, output: null } },
  };

  async function compensate(startedOnly: 'fence' | 'read' | undefined, started: boolean): Promise<{ status: string; ran: unknown[]; record: string | undefined }> {
    const { dir, file } = await recordOf();
    if (started) await markCallStarted(file, 'call-1');
    const ran: unknown[] = [];
    const outcome = await runCompensation(compensation, {
      stateDir: dir,
      taskKey: TASK_KEY,
      ...(startedOnly === undefined ? {} : { startedOnly }),
      runTool: async (tool, input) => {
        ran.push([tool, input]);
        return null;
      },
    });
    return { status: outcome.status, ran, record: await readCallStart(file) };
  }

  it.each([
    { startedOnly: 'fence' as const, started: true, status: 'done', runs: 1, record: 'started' },
    { startedOnly: 'fence' as const, started: false, status: 'not-run', runs: 0, record: 'never' },
    { startedOnly: 'read' as const, started: true, status: 'done', runs: 1, record: 'started' },
    // This folder cannot say: nothing runs, and nothing is fenced (the call's record may be in another worker's folder).
    { startedOnly: 'read' as const, started: false, status: 'unknown', runs: 0, record: undefined },
    // A call known to have run (registered with its result) is compensated as before.
    { startedOnly: undefined, started: false, status: 'done', runs: 1, record: undefined },
  ])('startedOnly $startedOnly, started $started: $status', async ({ startedOnly, started, status, runs, record }) => {
    const outcome = await compensate(startedOnly, started);
    expect({ status: outcome.status, runs: outcome.ran.length, record: outcome.record }).toEqual({ status, runs, record });
  });
});
