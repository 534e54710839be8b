/**
 * The local-activity lane (workflows/local-lane.ts): local activities of one run go one at a
 * time, in the order asked, so the order they complete in is the order they were scheduled in,
 * live and on replay. Plain promises stand for the activities here (the lane holds no Temporal
 * state); test/workflows/monitor-kill.test.ts replays real kills that ran beside the loop.
 */
import { describe, expect, it } from 'vitest';
import { LocalLane } from '../../workflows/local-lane';

/** A call whose start is logged and which ends when the test says so. */
function gated(log: string[], name: string) {
  let end!: (value: string) => void;
  let fail!: (error: Error) => void;
  const call = () => {
    log.push(`start ${name}`);
    return new Promise<string>((resolve, reject) => {
      end = (v) => {
        log.push(`end ${name}`);
        resolve(v);
      };
      fail = reject;
    });
  };
  return { call, end: (v = name) => end(v), fail: (e: Error) => fail(e) };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('LocalLane', () => {
  it('starts a call only when the one before it has ended, in the order asked', async () => {
    const lane = new LocalLane(true);
    const log: string[] = [];
    const [loop, handler, later] = [gated(log, 'checkPolicy'), gated(log, 'authorizeKill'), gated(log, 'respondToAnomaly')];
    const results = Promise.all([lane.run(loop.call), lane.run(handler.call), lane.run(later.call)]);
    await settle();
    expect(log).toEqual(['start checkPolicy']);
    loop.end();
    await settle();
    expect(log).toEqual(['start checkPolicy', 'end checkPolicy', 'start authorizeKill']);
    handler.end();
    await settle();
    later.end();
    expect(await results).toEqual(['checkPolicy', 'authorizeKill', 'respondToAnomaly']);
    expect(log).toEqual(['start checkPolicy', 'end checkPolicy', 'start authorizeKill', 'end authorizeKill', 'start respondToAnomaly', 'end respondToAnomaly']);
  });

  it('a free lane starts the call at once (the command goes out where it always did)', () => {
    const lane = new LocalLane(true);
    const log: string[] = [];
    void lane.run(gated(log, 'beginMonitoring').call);
    expect(log).toEqual(['start beginMonitoring']);
  });

  it('a call that fails frees the lane and fails its caller alone', async () => {
    const lane = new LocalLane(true);
    const log: string[] = [];
    const [first, second] = [gated(log, 'a'), gated(log, 'b')];
    const failed = lane.run(first.call);
    const next = lane.run(second.call);
    first.fail(new Error('refused'));
    await expect(failed).rejects.toThrow('refused');
    await settle();
    second.end('fine');
    await expect(next).resolves.toBe('fine');
    expect(log).toEqual(['start a', 'start b', 'end b']);
  });

  it('disabled (runs from before the patch), calls go through untouched, overlapping as before', () => {
    const lane = new LocalLane(false);
    const log: string[] = [];
    const call = gated(log, 'a').call;
    const promise = Promise.resolve('x');
    expect(lane.run(() => promise)).toBe(promise);
    void lane.run(call);
    void lane.run(gated(log, 'b').call);
    expect(log).toEqual(['start a', 'start b']);
  });
});
