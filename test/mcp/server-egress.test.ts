/**
 * A stdio MCP server's requests, call by call (mcp/server-egress.ts): a request while calls are in
 * flight is reported with each and held by the strictest watch; one made while no call is in
 * flight (nobody could score it) is held when the last watch did not know its host.
 */
import { describe, expect, it } from 'vitest';
import type { EgressWatch } from '../../monitoring/egress-watch';
import { ServerEgress } from '../../mcp/server-egress';
import type { EgressDecision } from '../../sandbox/os/egress-proxy';

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
    expect(done).toEqual({ result: 'quick', egress: [decision('api.example.com')] });
    expect(other).toEqual({ result: 'slow', egress: [decision('api.example.com'), decision('mirror.example')] });
  });

  it('between calls, holds any host the last watch did not know (whatever it held during calls)', async () => {
    const egress = new ServerEgress();
    expect(egress.gate({ host: 'exfil.example', method: 'POST' })).toBeUndefined(); // no watch yet: nothing to judge by
    await egress.during(watch('none'), async () => undefined);
    expect(egress.gate({ host: 'exfil.example', method: 'GET' })).toMatchObject({ heldBy: 'monitor', reason: expect.stringContaining('no tool call was in flight') });
    expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined();
    egress.record(decision('exfil.example'));
  });

  it('a call that fails still leaves no call in flight', async () => {
    const egress = new ServerEgress();
    await expect(egress.during(watch('none'), () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(egress.gate({ host: 'api.example.com', method: 'POST' })).toBeUndefined();
  });
});
