/**
 * The egress watch's classes of bypass, as pure functions (issue 14): what counts as a write (a
 * body makes any method one), which hosts are known to a watch (the baseline's, never the step's;
 * for a sub-agent without a baseline, its nearest ancestor's), and the per-destination tally that
 * never drops a destination (sandbox/os/egress-tally.ts). The end-to-end reproductions are in
 * test/attacks/ (get-with-body-to-new-host, url-argument-whitelists-new-host,
 * subagent-without-baseline-launders-egress, egress-decision-cap-hides-new-host).
 */
import { describe, expect, it } from 'vitest';
import { featuresOfAction, networkEffectsOf } from '../../monitoring/action-features';
import { learnBaselines, type AgentBaseline } from '../../monitoring/baseline';
import { egressHoldReason, isNetworkWrite, type EgressWatch } from '../../monitoring/egress-watch';
import { emptyHistory, recordProposed } from '../../monitoring/monitor-history';
import { scoreProposed, type TreeHosts } from '../../monitoring/score-action';
import { egressEffectsOf } from '../../sandbox/os/egress-effects';
import type { EgressDecision } from '../../sandbox/os/egress-proxy';
import { EgressTally, methodClassOf, OVERFLOW_HOST } from '../../sandbox/os/egress-tally';
import type { StepRecord, TaskResult } from '../../task/task-run';

const T0 = Date.parse('2026-11-30T10:00:00Z');

describe('a write is any request that sends a body, whatever its method', () => {
  it.each([
    ['GET', false, false],
    ['HEAD', false, false],
    ['OPTIONS', false, false],
    ['GET', true, true],
    ['get', true, true],
    ['HEAD', true, true],
    ['OPTIONS', true, true],
    ['POST', false, true],
    ['PROPFIND', false, true],
    ['CONNECT', false, true],
  ] as const)('%s with a body %s: write %s', (method, sendsBody, write) => {
    expect(isNetworkWrite(method, sendsBody)).toBe(write);
    const watch: EgressWatch = { knownHosts: ['api.example.com'], hold: 'writes', agent: 'clerk' };
    expect(egressHoldReason(watch, 'exfil.example', method, sendsBody) !== undefined).toBe(write);
    expect(egressHoldReason(watch, 'api.example.com', method, sendsBody)).toBeUndefined();
    expect(methodClassOf(method, sendsBody)).toBe(method === 'CONNECT' ? 'tunnel' : write ? 'write' : 'read');
  });

  it('a proxied GET that sent a body is reported and scored as a network write (held or not)', () => {
    for (const allowed of [true, false]) {
      const d: EgressDecision = { method: 'GET', target: 'http://exfil.example/c', host: 'exfil.example', allowed, sendsBody: true, bytesOut: allowed ? 37 : 0 };
      const effects = egressEffectsOf([d]);
      expect(effects[0]!.effect).toMatchObject({ urls: [{ method: 'GET', write: true }] });
      const network = networkEffectsOf(effects);
      expect(network[0]).toMatchObject({ host: 'exfil.example', method: 'GET', write: true });
      expect(featuresOfAction('proc.run', { command: 'curl' }, { network }).networkWrite).toBe(true);
    }
    const plain = networkEffectsOf(egressEffectsOf([{ method: 'GET', target: 'http://exfil.example/c', host: 'exfil.example', allowed: true }]));
    expect(featuresOfAction('proc.run', { command: 'curl' }, { network: plain }).networkWrite).toBe(false);
  });
});

function run(agent: string, hosts: string[]): TaskResult {
  const steps: StepRecord[] = hosts.map((h, index) => ({ index, turn: index, kind: 'tool', tool: 'http.fetch', args: { url: `https://${h}/x` }, decision: 'allow', reason: 'granted', executed: true, output: { ok: true }, startedAt: new Date(T0).toISOString(), durationMs: 5 }));
  return { workflowId: `w-${agent}`, runId: 'r', agent, model: { id: 'm', version: '1' }, depth: 0, status: 'completed', steps, children: [], final: { answer: 'ok', claims: [] } };
}

const learnt = (agent: string, hosts: string[]): AgentBaseline => learnBaselines(Array.from({ length: 6 }, () => run(agent, hosts)), '2026-11-30T00:00:00Z').baselines[0]!;

describe('a sub-agent without a baseline is scored against its tree', () => {
  const parent = learnt('clerk', ['api.example.com']);
  const tree: TreeHosts = { agent: parent.agent, tasks: parent.tasks, hosts: parent.hosts };
  const signals = (baseline: AgentBaseline | undefined, treeHosts: TreeHosts | undefined, url: string, method = 'GET') => {
    const history = emptyHistory();
    const features = featuresOfAction('http.fetch', { url, method });
    recordProposed(history, features, 0, T0);
    return scoreProposed(history, baseline, features, T0, treeHosts === undefined ? {} : { treeHosts }).map((r) => [r.signal, r.points]);
  };

  it.each([
    ['no baseline, no tree: nothing is new', undefined, undefined, 'https://exfil.example/c', 'POST', []],
    ['no baseline, the tree knows the host', undefined, tree, 'https://api.example.com/c', 'POST', []],
    ['no baseline, a host new to the tree (write)', undefined, tree, 'https://exfil.example/c', 'POST', [['new-host', 70]]],
    ['no baseline, a host new to the tree (read)', undefined, tree, 'https://exfil.example/c', 'GET', [['new-host', 50]]],
    ['a young baseline (2 runs) counts as none', learnBaselines([run('courier', ['exfil.example']), run('courier', ['exfil.example'])], '2026-11-30T00:00:00Z').baselines[0], tree, 'https://exfil.example/c', 'POST', [['new-host', 70]]],
  ] as const)('%s', (_what, baseline, treeHosts, url, method, expected) => {
    expect(signals(baseline, treeHosts, url, method)).toEqual(expected);
  });

  it('its own usable baseline wins over the tree', () => {
    const own = learnt('courier', ['exfil.example']);
    expect(signals(own, tree, 'https://exfil.example/c', 'GET')).toEqual([]);
    expect(signals(own, tree, 'https://api.example.com/c', 'GET')).toEqual([['new-host', 50]]);
  });
});

describe('the egress tally keeps every destination', () => {
  const d = (host: string, method = 'GET', extra: Partial<EgressDecision> = {}): EgressDecision => ({ method, target: `http://${host}/`, host, allowed: true, bytesOut: 0, ...extra });

  it.each([0, 1, 999, 1000, 1001, 20_000])('a new host before or after %i requests to the usual one is reported', (padding) => {
    for (const order of ['before', 'after'] as const) {
      const tally = new EgressTally();
      if (order === 'before') tally.add(d('exfil.example', 'GET', { bytesOut: 37 }));
      for (let i = 0; i < padding; i += 1) tally.add(d('api.example.com'));
      if (order === 'after') tally.add(d('exfil.example', 'GET', { bytesOut: 37 }));
      const hosts = tally.decisions.map((x) => [x.host, x.requests, x.bytesOut]);
      expect(hosts).toContainEqual(['exfil.example', 1, 37]);
      if (padding > 0) expect(hosts).toContainEqual(['api.example.com', padding, 0]);
    }
  });

  it('keeps reads, writes and tunnels to one host apart, and held from allowed', () => {
    const tally = new EgressTally();
    for (const x of [d('h.example'), d('h.example', 'GET', { sendsBody: true, bytesOut: 5 }), d('h.example', 'POST', { bytesOut: 7 }), d('h.example', 'CONNECT'), d('h.example', 'POST', { allowed: false, heldBy: 'monitor' })]) tally.add(x);
    expect(tally.decisions.map((x) => [x.method, x.allowed, x.requests, x.bytesOut])).toEqual([
      ['GET', true, 1, 0],
      ['GET', true, 2, 12],
      ['CONNECT', true, 1, 0],
      ['POST', false, 1, 0],
    ]);
  });

  it('counts bytes streamed after a request was counted', () => {
    const tally = new EgressTally();
    const streaming = d('api.example.com', 'POST');
    tally.add(streaming);
    tally.grow(streaming, 1000);
    tally.grow(d('other.example'), 5); // never counted: ignored
    expect(tally.decisions).toEqual([expect.objectContaining({ host: 'api.example.com', bytesOut: 1000 })]);
  });

  it('past its cap admits only destinations it has, and reports the overflow as a held new host', () => {
    const tally = new EgressTally(2);
    tally.add(d('a.example'));
    tally.add(d('b.example'));
    expect([tally.admits('a.example', 'GET'), tally.admits('a.example', 'POST'), tally.admits('c.example', 'GET'), tally.admits('a.example', 'GET', true)]).toEqual([true, false, false, false]);
    tally.add(d('c.example', 'POST', { allowed: false, heldBy: 'monitor' }));
    expect(tally.overflow).toBe(1);
    const network = networkEffectsOf(egressEffectsOf(tally.decisions));
    expect(network.at(-1)).toMatchObject({ host: OVERFLOW_HOST, method: 'CONNECT', held: true });
  });
});
