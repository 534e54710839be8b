/**
 * A baseline learns only what ran (newcomer s22: after examples/injected-agent.yaml, whose
 * http.fetch to attacker.example was DENIED and never ran, `warden baseline learn` listed
 * http.fetch and attacker.example as the agent's normal behaviour, so a later granted call there
 * would not score new-host or new-tool). Each row is one way a step can fail to reach something:
 * refused by the grant or a rule, or a request the egress refused or held; the same step run
 * is the control, and is learnt.
 */
import { describe, expect, it } from 'vitest';
import { learnBaselines } from '../../monitoring/baseline';
import type { StepEffect, StepRecord, TaskResult } from '../../task/task-run';

const T0 = Date.parse('2026-11-30T10:00:00Z');

function step(index: number, tool: string, args: Record<string, unknown>, extra: Partial<StepRecord> = {}): StepRecord {
  return { index, turn: index, kind: tool.startsWith('spawn:') ? 'spawn' : 'tool', tool, args, decision: 'allow', reason: 'granted', executed: true, output: { ok: true }, startedAt: new Date(T0 + index * 1000).toISOString(), durationMs: 5, ...extra };
}

const refused: Partial<StepRecord> = { decision: 'deny', reason: 'tool "http.fetch" is not granted', executed: false, output: undefined };

function egress(origin: string, decision: StepEffect['decision']): StepEffect {
  return { tool: 'http.fetch', effect: { urls: [{ url: origin, host: new URL(origin).hostname, method: 'GET' }], bytes: 10, requests: 1, via: 'egress-proxy' }, decision, rules: [] };
}

function run(extra: StepRecord): TaskResult {
  const steps = [step(0, 'fs.read', { path: 'notes.txt' }), { ...extra, index: 1 }];
  return { workflowId: 'w', runId: 'r', agent: 'helpdesk', model: { id: 'm', version: '1' }, depth: 0, status: 'completed', steps, children: [], final: { answer: 'ok', claims: [] } };
}

function learnt(extra: StepRecord) {
  const baseline = learnBaselines([run(extra)], '2026-11-30T00:00:00Z').baselines[0]!;
  return { tools: Object.keys(baseline.tools).sort(), hosts: baseline.hosts, subagents: baseline.subagents };
}

describe('what a baseline learns of a step', () => {
  it.each([
    ['an http.fetch refused by the grant', step(1, 'http.fetch', { url: 'https://attacker.example/x' }, refused), { tools: ['fs.read'], hosts: [], subagents: [] }],
    ['an http.fetch that ran (control)', step(1, 'http.fetch', { url: 'https://attacker.example/x' }), { tools: ['fs.read', 'http.fetch'], hosts: ['attacker.example'], subagents: [] }],
    ['a spawn refused', step(1, 'spawn:exfil', { subagent: 'exfil' }, { ...refused, reason: 'not granted' }), { tools: ['fs.read'], hosts: [], subagents: [] }],
    ['a spawn that ran (control)', step(1, 'spawn:exfil', { subagent: 'exfil' }), { tools: ['fs.read', 'spawn:exfil'], hosts: [], subagents: ['exfil'] }],
    ['a program whose request the egress refused', step(1, 'proc.run', { command: 'curl' }, { effects: [egress('https://attacker.example', 'deny')] }), { tools: ['fs.read', 'proc.run'], hosts: [], subagents: [] }],
    ['a program whose request the monitor held', step(1, 'proc.run', { command: 'curl' }, { effects: [egress('https://attacker.example', 'approval')] }), { tools: ['fs.read', 'proc.run'], hosts: [], subagents: [] }],
    ['a program whose request went out (control)', step(1, 'proc.run', { command: 'curl' }, { effects: [egress('https://api.example.com', 'allow')] }), { tools: ['fs.read', 'proc.run'], hosts: ['api.example.com'], subagents: [] }],
  ])('%s', (_name, extra, expected) => {
    expect(learnt(extra)).toEqual(expected);
  });

  it('still counts the refusals of a run, per task', () => {
    const baseline = learnBaselines([run(step(1, 'http.fetch', { url: 'https://attacker.example/x' }, refused))], '2026-11-30T00:00:00Z').baselines[0]!;
    expect(baseline.refusalsPerTask.max).toBe(1);
  });
});
