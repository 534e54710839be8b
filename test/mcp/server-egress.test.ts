/**
 * A stdio MCP server's requests, call by call (mcp/server-egress.ts): a request while calls are in
 * flight is reported with each and held by the strictest watch; one made while no call is in
 * flight (nobody could score it) is held when the session's watch (the last call's, or the one
 * the connection opened with) did not know its host, and is reported with the next call. Every
 * destination is reported, counted per destination; past the cap a new destination is held.
 */
import { describe, expect, it } from 'vitest';
import type { EgressWatch } from '../../monitoring/egress-watch';
import { ServerEgress } from '../../mcp/server-egress';
import type { EgressDecision } from '../../sandbox/os/egress-proxy';
import { MAX_EGRESS_DESTINATIONS, OVERFLOW_HOST } from '../../sandbox/os/egress-tally';

const watch = (hold: EgressWatch['hold']): EgressWatch => ({ knownHosts: ['api.example.com'], hold, agent: 'clerk' });
const decision = (host: string): EgressDecision => ({ method: 'POST', target: `http://${host}/`, allowed: true, host });

describe('a stdio MCP server’s egress', () => {
  it('attributes requests to the calls in flight and holds by the strictest watch', async () => {
    const egress = new ServerEgress();
    let release!: () => void;
    const slow = egress.during(watch('none'), () => new Promise<string>((resolve) => (release = () => resolve('slow'))));
    const quick = egress.during(watch('writes'), async () => {
      // While both calls are in flight: the `writes` watch holds a POST to a new host.
      expect(egress.gate({ host: 'exfil.example', method: 'POST' })).toMatchObject({ heldBy: 'monitor' });
      expect(egress.gate({ host: 'exfil.example', method: 'GET' })).toBeUndefined();
      egress.record(decision('api.example.com'));
      return 'quick';
    });
    const done = await quick;
    egress.record(decision('mirror.example'));
    release();
    const other = await slow;
    const tallied = (host: string) => ({ ...decision(host), requests: 1, bytesOut: 0 });
    expect(done).toEqual({ result: 'quick', egress: [tallied('api.example.com')] });
    expect(other).toEqual({ result: 'slow', egress: [tallied('api.example.com'), tallied('mirror.example')] });
  });

  it('reports a call’s requests however the call ends: a call that fails (times out, is cancelled) still has them counted', async () => {
    const egress = new ServerEgress();
    const reported: EgressDecision[][] = [];
    const failed = await egress
      .during(
        watch('none'),
        async () => {
          egress.record(decision('new.example'));
          throw new Error('timed out');
        },
        (seen) => reported.push(seen),
      )
      .then(
        () => 'resolved',
        (error: Error) => error.message,
      );
    expect(failed).toBe('timed out');
    expect(reported).toEqual([[expect.objectContaining({ host: 'new.example', requests: 1 })]]);
    // A call that completes reports what it returns.
    const done = await egress.during(watch('none'), async () => egress.record(decision('api.example.com')), (seen) => reported.push(seen));
    expect(reported[1]).toEqual(done.egress);
  });

  it('between calls, holds any host the last watch did not know (whatever it held during calls)', async () => {
    const egress = new ServerEgress();
    expect(egress.gate({ host: 'exfil.example', method: 'POST' })).toBeUndefined(); // no watch yet: nothing to judge by
    await egress.during(watch('none'), async () => undefined);
    expect(egress.gate({ host: 'exfil.example', method: 'GET' })).toMatchObject({ heldBy: 'monitor', reason: expect.stringContaining('no tool call was in flight') });
    expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined();
    egress.record(decision('exfil.example'));
  });

  it('before its first call, judges by the session watch it was opened with; requests between calls are reported with the next call', async () => {
    const egress = new ServerEgress(watch('none'));
    expect(egress.gate({ host: 'exfil.example', method: 'GET' })).toMatchObject({ heldBy: 'monitor', reason: expect.stringContaining('no tool call was in flight') });
    expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined();
    egress.record({ ...decision('exfil.example'), allowed: false, heldBy: 'monitor' });
    const first = await egress.during(watch('none'), async () => 'ok');
    expect(first.egress).toEqual([expect.objectContaining({ host: 'exfil.example', heldBy: 'monitor', requests: 1 })]);
    const second = await egress.during(watch('none'), async () => 'ok');
    expect(second.egress).toEqual([]);
  });

  it('reports every destination of a call however many requests it made (padding before or after), counted per destination', async () => {
    for (const order of ['padding first', 'padding after'] as const) {
      const egress = new ServerEgress();
      const { egress: seen } = await egress.during(watch('none'), async () => {
        if (order === 'padding after') egress.record({ ...decision('exfil.example'), method: 'GET', bytesOut: 3 });
        for (let i = 0; i < 5000; i += 1) egress.record({ ...decision('api.example.com'), method: 'GET' });
        if (order === 'padding first') egress.record({ ...decision('exfil.example'), method: 'GET', bytesOut: 3 });
      });
      expect(seen, order).toEqual([
        ...(order === 'padding after' ? [expect.objectContaining({ host: 'exfil.example', requests: 1, bytesOut: 3 })] : []),
        expect.objectContaining({ host: 'api.example.com', requests: 5000 }),
        ...(order === 'padding first' ? [expect.objectContaining({ host: 'exfil.example', requests: 1, bytesOut: 3 })] : []),
      ]);
    }
  });

  it('counts bytes a request streams after its decision; past the destination cap, holds a new destination', async () => {
    const egress = new ServerEgress();
    const result = await egress.during(watch('none'), async () => {
      const streaming = decision('api.example.com');
      egress.record(streaming);
      egress.grow(streaming, 1234);
      for (let i = 0; i < MAX_EGRESS_DESTINATIONS - 1; i += 1) egress.record(decision(`h${i}.example`));
      expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined(); // a destination already counted
      expect(egress.gate({ host: 'one-more.example', method: 'POST' })).toMatchObject({ heldBy: 'monitor', reason: expect.stringContaining('too many destinations') });
      egress.record({ ...decision('one-more.example'), allowed: false, heldBy: 'monitor' });
    });
    expect(result.egress[0]).toMatchObject({ host: 'api.example.com', bytesOut: 1234 });
    expect(result.egress).toHaveLength(MAX_EGRESS_DESTINATIONS + 1);
    expect(result.egress.at(-1)).toMatchObject({ host: OVERFLOW_HOST, requests: 1, heldBy: 'monitor' });
  });

  it('a call that fails still leaves no call in flight', async () => {
    const egress = new ServerEgress();
    await expect(egress.during(watch('none'), () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined();
  });
});
