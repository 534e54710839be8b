/**
 * The evaluator: decisions on measured effects, deny over approval over allow, rates with an
 * injected clock, budgets summed across a sub-agent tree, and the failures of loading.
 */
import { describe, expect, it } from 'vitest';
import { PolicyError, PolicyParseError } from '../../errors';
import { compileRule, type CompiledRule } from '../../policies/engine/compile-rule';
import { createPolicyEngine, loadPolicyEngine, type PolicyEngine } from '../../policies/engine/policy-engine';
import type { PolicyRequestInput } from '../../policies/engine/policy-request';
import { emptyPolicyState, mergePolicyStates, PolicyStateSchema, type PolicyState } from '../../policies/engine/policy-state';

const ROOT = { name: 'assistant', depth: 0, chain: [], id: 'task-1' };
const CHILD_A = { name: 'researcher', depth: 1, chain: ['assistant'], id: 'task-1/researcher-1' };
const CHILD_B = { name: 'buyer', depth: 1, chain: ['assistant'], id: 'task-1/buyer-2' };
const GRANDCHILD = { name: 'helper', depth: 2, chain: ['assistant', 'buyer'], id: 'task-1/buyer-2/helper-1' };

function at(seconds: number): string {
  return new Date(Date.UTC(2026, 2, 2, 10, 0, 0) + seconds * 1000).toISOString();
}

function sqlDelete(rowsChanged: number | undefined, args: Record<string, unknown> = {}): PolicyRequestInput {
  return {
    tool: 'sql.exec',
    args: { database: 'inventory', sql: 'DELETE FROM items WHERE qty = 0', ...args },
    agent: ROOT,
    ...(rowsChanged === undefined ? {} : { effect: { rowsChanged, operation: 'delete' } }),
    now: at(0),
  };
}

function pay(agent: PolicyRequestInput['agent'], amount: number, seconds = 0): PolicyRequestInput {
  return {
    tool: 'pay.send',
    args: { recipient: 'acct_9F3kQ2', amount },
    agent,
    effect: { amount, currency: 'USD' },
    provenance: { '/recipient': 'user', '/amount': 'user' },
    now: at(seconds),
  };
}

/** Runs the request through decide and, unless denied, records it as executed. */
function step(engine: PolicyEngine, state: PolicyState, request: PolicyRequestInput): { decision: string; state: PolicyState } {
  const { decision } = engine.decide(request, state);
  return { decision, state: decision === 'deny' ? state : engine.recordExecution(state, request, { status: 'ok' }) };
}

describe('effects are measured, not claimed', () => {
  const engine = loadPolicyEngine({ sentences: ['never delete more than 10 rows without explicit approval'] });

  it('42 rows under the 10-row rule needs approval', () => {
    const decision = engine.decide(sqlDelete(42));
    expect(decision.decision).toBe('approval');
    expect(decision.matched).toEqual([expect.objectContaining({ id: 'task:1', effect: 'approval', kind: 'cedar' })]);
    expect(decision.reasons[0]).toContain('measured rows 42');
  });

  it('decides on the measured rows, whatever the arguments claim', () => {
    expect(engine.decide(sqlDelete(42, { rows: 3, sql: 'DELETE FROM items WHERE id = 1 -- just one row' })).decision).toBe('approval');
    expect(engine.decide(sqlDelete(3, { rows: 500 })).decision).toBe('allow');
  });

  it('fails closed when the tool declared no effect', () => {
    const decision = engine.decide(sqlDelete(undefined));
    expect(decision.decision).toBe('approval');
    expect(decision.reasons[0]).toContain('did not declare');
  });

  it('a delete limit does not apply to an UPDATE', () => {
    expect(engine.decide({ ...sqlDelete(42), effect: { rowsChanged: 42, operation: 'update' } }).decision).toBe('allow');
  });

  it('10 rows is not more than 10', () => {
    expect(engine.decide(sqlDelete(10)).decision).toBe('allow');
    expect(engine.decide(sqlDelete(11)).decision).toBe('approval');
  });
});

describe('deny beats approval beats allow', () => {
  const engine = loadPolicyEngine({
    sentences: ['allow sql.exec', 'never delete more than 10 rows without explicit approval', 'never delete more than 1,000 rows', 'require approval for database tools'],
  });

  it('deny wins when a deny and an approval rule both match, and both are reported', () => {
    const decision = engine.decide(sqlDelete(5000));
    expect(decision.decision).toBe('deny');
    expect(decision.matched.map((m) => `${m.id}:${m.effect}`).sort()).toEqual(['task:1:allow', 'task:2:approval', 'task:3:deny', 'task:4:approval']);
    expect(decision.reasons).toHaveLength(1);
    expect(decision.reasons[0]).toContain('more than 1000 rows');
  });

  it('approval wins over allow', () => {
    const decision = engine.decide(sqlDelete(5));
    expect(decision.decision).toBe('approval');
    expect(decision.matched.map((m) => m.effect).sort()).toEqual(['allow', 'approval']);
  });

  it('an action no rule matches is allowed', () => {
    const decision = engine.decide({ tool: 'fs.read', args: { path: 'a.txt' }, agent: ROOT, now: at(0) });
    expect(decision).toEqual({ decision: 'allow', matched: [], reasons: ['no rule matched: allowed (the task grants the action)'] });
  });
});

describe('rates, with the clock injected through the request', () => {
  const engine = loadPolicyEngine({ sentences: ['never make more than 20 calls per minute', 'never make more than 3 calls of http.fetch per minute'] });
  const read = (seconds: number, agent: PolicyRequestInput['agent'] = ROOT): PolicyRequestInput => ({ tool: 'fs.read', args: { path: 'a' }, agent, now: at(seconds) });
  const fetch = (seconds: number): PolicyRequestInput => ({ tool: 'http.fetch', args: { url: 'https://api.example.com/' }, agent: ROOT, now: at(seconds) });

  it('allows 20 calls in a minute, denies the 21st, allows again once the window has passed', () => {
    let state = emptyPolicyState();
    const decisions: string[] = [];
    for (let i = 0; i < 21; i += 1) {
      const r = step(engine, state, read(i));
      decisions.push(r.decision);
      state = r.state;
    }
    expect(decisions.slice(0, 20).every((d) => d === 'allow')).toBe(true);
    expect(decisions[20]).toBe('deny');
    expect(engine.decide(read(21), state).reasons[0]).toContain('20 calls across the task in the last minute, limit 20');
    // at 60s the first call (at 0s) has left the window
    expect(engine.decide(read(59.5), state).decision).toBe('deny');
    expect(engine.decide(read(60), state).decision).toBe('allow');
  });

  it('counts only the tools a rate names', () => {
    let state = emptyPolicyState();
    for (let i = 0; i < 10; i += 1) state = step(engine, state, read(i)).state;
    // 10 reads do not count against the fetch rate: 3 fetches pass, the 4th is denied
    for (let i = 0; i < 3; i += 1) {
      const r = step(engine, state, fetch(10 + i));
      expect(r.decision).toBe('allow');
      state = r.state;
    }
    expect(engine.decide(fetch(13), state).decision).toBe('deny');
  });

  it('counts the calls of sub-agents in the task-wide rate', () => {
    let state = emptyPolicyState();
    for (let i = 0; i < 10; i += 1) state = step(engine, state, read(i, ROOT)).state;
    for (let i = 0; i < 10; i += 1) state = step(engine, state, read(10 + i, CHILD_A)).state;
    expect(engine.decide(read(30, CHILD_B), state).decision).toBe('deny');
  });

  it('a per-agent rate counts only that agent', () => {
    const perAgent = loadPolicyEngine({ sentences: ['never make more than 2 calls per minute per agent'] });
    let state = emptyPolicyState();
    for (let i = 0; i < 2; i += 1) state = step(perAgent, state, read(i, ROOT)).state;
    expect(perAgent.decide(read(3, ROOT), state).decision).toBe('deny');
    expect(perAgent.decide(read(3, CHILD_A), state).decision).toBe('allow');
  });
});

describe('budgets summed across a task and its sub-agents', () => {
  const engine = loadPolicyEngine({ sentences: ['never spend more than $500 across the task and its sub-agents', 'never make more than 6 tool calls across the task'] });

  it('denies the payment that takes the tree over budget, wherever in the tree it happens', () => {
    // The root spends $200, then hands its state to two sub-agents (one with a sub-agent of its own).
    let root = step(engine, emptyPolicyState(), pay(ROOT, 200)).state;
    let a = step(engine, root, pay(CHILD_A, 100, 1)).state;
    let b = step(engine, root, pay(CHILD_B, 50, 2)).state;
    const grand = step(engine, b, pay(GRANDCHILD, 100, 3)).state;
    b = mergePolicyStates(b, grand);
    root = mergePolicyStates(root, a, b);
    // spent: 200 + 100 + 50 + 100 = 450
    expect(engine.decide(pay(ROOT, 50, 4), root).decision).toBe('allow');
    const over = engine.decide(pay(GRANDCHILD, 60, 4), root);
    expect(over.decision).toBe('deny');
    expect(over.reasons[0]).toContain('$450.00 across the task so far + $60.00 now, limit $500.00');
    a = mergePolicyStates(a, root);
    expect(engine.decide(pay(CHILD_A, 51, 5), a).decision).toBe('deny');
  });

  it('merging states copied into sub-agents and back does not double count', () => {
    const root = step(engine, emptyPolicyState(), pay(ROOT, 200)).state;
    const child = step(engine, root, pay(CHILD_A, 100, 1)).state;
    const merged = mergePolicyStates(root, child, child, root);
    expect(mergePolicyStates(merged, merged)).toEqual(merged);
    expect(engine.decide(pay(ROOT, 200, 2), merged).decision).toBe('allow'); // 300 + 200 = 500
    expect(engine.decide(pay(ROOT, 201, 2), merged).decision).toBe('deny');
  });

  it('counts tool calls across the tree', () => {
    let state = emptyPolicyState();
    for (const agent of [ROOT, ROOT, CHILD_A, CHILD_A, GRANDCHILD, CHILD_B]) state = step(engine, state, { tool: 'fs.read', args: { path: 'x' }, agent, now: at(0) }).state;
    const decision = engine.decide({ tool: 'fs.list', args: {}, agent: CHILD_B, now: at(1) }, state);
    expect(decision.decision).toBe('deny');
    expect(decision.reasons[0]).toContain('6 calls across the task so far, limit 6');
  });
});

describe('recordExecution', () => {
  const engine = loadPolicyEngine({ sentences: ['never delete more than 100 rows across the task'] });

  it('is pure and its state is plain JSON', () => {
    const before = emptyPolicyState();
    const after = engine.recordExecution(before, sqlDelete(42), { status: 'ok' });
    expect(before).toEqual(emptyPolicyState());
    expect(PolicyStateSchema.parse(JSON.parse(JSON.stringify(after)))).toEqual(after);
    expect(after.agents['task-1']?.tools['sql.exec']).toEqual({ calls: 1, rows: 42, 'rows:delete': 42 });
  });

  it('a denied action changes nothing; a failed one counts as a call without its effect', () => {
    const state = emptyPolicyState();
    expect(engine.recordExecution(state, sqlDelete(42), { status: 'denied' })).toBe(state);
    const failed = engine.recordExecution(state, sqlDelete(42), { status: 'error' });
    expect(failed.agents['task-1']?.tools['sql.exec']).toEqual({ calls: 1 });
  });

  it('records the effect the tool reported after running, when it differs', () => {
    let state = engine.recordExecution(emptyPolicyState(), sqlDelete(60), { status: 'ok', effect: { rowsChanged: 30, operation: 'delete' } });
    expect(engine.decide(sqlDelete(70), state).decision).toBe('allow');
    state = engine.recordExecution(state, sqlDelete(70), { status: 'ok' });
    expect(engine.decide(sqlDelete(1), state).decision).toBe('deny');
  });
});

describe('paths, hosts and time windows', () => {
  const engine = loadPolicyEngine({
    sentences: ['never write outside /workspace', 'never fetch from any host except api.example.com', 'never run sql.exec outside 09:00-17:00 UTC'],
  });
  const write = (path: string, effectPath?: string): PolicyRequestInput => ({
    tool: 'fs.write',
    args: { path, content: 'x' },
    agent: ROOT,
    ...(effectPath === undefined ? {} : { effect: { path: effectPath, bytes: 1 } }),
    now: at(0),
  });

  it('resolves relative paths inside the workspace and catches climbing out', () => {
    expect(engine.decide(write('out/report.md')).decision).toBe('allow');
    expect(engine.decide(write('/workspace')).decision).toBe('allow');
    expect(engine.decide(write('../secrets')).decision).toBe('deny');
    expect(engine.decide(write('/workspace-evil/x')).decision).toBe('deny');
  });

  it('the measured path wins over the argument', () => {
    expect(engine.decide(write('ok.txt', '/etc/passwd')).decision).toBe('deny');
  });

  it('checks every touched resource', () => {
    const request = { ...write('ok.txt'), resources: { paths: ['/workspace/a', '/tmp/b'] } };
    expect(engine.decide(request).decision).toBe('deny');
  });

  it('checks the host of the URL, ignoring case and port', () => {
    const fetch = (url: string): PolicyRequestInput => ({ tool: 'http.fetch', args: { url }, agent: ROOT, now: at(0) });
    expect(engine.decide(fetch('https://API.example.com:443/v1')).decision).toBe('allow');
    expect(engine.decide(fetch('https://api.example.com.evil.net/')).decision).toBe('deny');
    expect(engine.decide(fetch('not a url')).decision).toBe('deny');
  });

  it('decides time windows on the injected clock', () => {
    const exec = (iso: string): string => engine.decide({ ...sqlDelete(1), now: iso }).decision;
    expect(exec('2026-03-02T08:59:59Z')).toBe('deny');
    expect(exec('2026-03-02T09:00:00Z')).toBe('allow');
    expect(exec('2026-03-02T16:59:00Z')).toBe('allow');
    expect(exec('2026-03-02T17:00:00Z')).toBe('deny');
    expect(exec('2026-03-02T18:30:00+02:00')).toBe('allow'); // 16:30 UTC
  });
});

describe('sub-agents', () => {
  const engine = loadPolicyEngine({ sentences: ['sub-agents may not spawn sub-agents', 'no more than 3 levels of sub-agents'] });
  const spawn = (agent: PolicyRequestInput['agent']): string => engine.decide({ tool: 'spawn:helper', args: {}, agent, now: at(0) }).decision;

  it('the root may spawn, a sub-agent may not', () => {
    expect(spawn(ROOT)).toBe('allow');
    expect(spawn(CHILD_A)).toBe('deny');
  });

  it('limits nesting depth', () => {
    const depthOnly = loadPolicyEngine({ sentences: ['no more than 2 levels of sub-agents'] });
    const spawnAt = (depth: number): string => depthOnly.decide({ tool: 'spawn:helper', args: {}, agent: { name: 'x', depth, chain: [] }, now: at(0) }).decision;
    expect([0, 1, 2, 3].map(spawnAt)).toEqual(['allow', 'allow', 'deny', 'deny']);
  });

  it('spawn rules never match tool calls, and tool rules never match spawns', () => {
    expect(engine.decide({ tool: 'fs.read', args: {}, agent: GRANDCHILD, now: at(0) }).decision).toBe('allow');
    const denyAll = loadPolicyEngine({ sentences: ['deny any tool'] });
    expect(denyAll.decide({ tool: 'spawn:helper', args: {}, agent: ROOT, now: at(0) }).decision).toBe('allow');
  });
});

describe('loading', () => {
  it('an unreadable sentence fails the load with ERR_POLICY_UNREADABLE', () => {
    expect(() => loadPolicyEngine({ sentences: ['allow fs.read', 'never delete lots of rows'] })).toThrow(PolicyParseError);
  });

  it('a missing pack is ERR_POLICY_PACK_NOT_FOUND', () => {
    try {
      loadPolicyEngine({ packs: ['no-such-pack'] });
      throw new Error('loaded');
    } catch (error) {
      expect((error as PolicyError).code).toBe('ERR_POLICY_PACK_NOT_FOUND');
    }
  });

  it('a Cedar policy that fails schema validation is ERR_POLICY_INVALID', () => {
    const good = compileRule('never delete more than 10 rows', 'x:1');
    const bad: CompiledRule = { ...good, id: 'x:2', cedar: '@id("x:2")\nforbid (principal, action, resource) when { context.rows > 10 };' } as CompiledRule;
    try {
      createPolicyEngine([good, bad]);
      throw new Error('loaded');
    } catch (error) {
      expect((error as PolicyError).code).toBe('ERR_POLICY_INVALID');
      expect((error as PolicyError).message).toContain('x:2');
      expect((error as PolicyError).message).toContain('rows');
    }
  });

  it('packs extend each other: enterprise includes the foundation once', () => {
    const engine = loadPolicyEngine({ packs: ['foundation', 'enterprise'] });
    const ids = engine.rules.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toBe('foundation:5');
    expect(ids.some((id) => id.startsWith('enterprise:'))).toBe(true);
  });

  it('a malformed request is ERR_POLICY_REQUEST_INVALID', () => {
    const engine = loadPolicyEngine({ sentences: ['allow fs.read'] });
    try {
      engine.decide({ tool: 'fs.read', args: {}, agent: ROOT, now: 'yesterday' });
      throw new Error('decided');
    } catch (error) {
      expect((error as PolicyError).code).toBe('ERR_POLICY_REQUEST_INVALID');
    }
  });

  it('compiled rules round-trip through JSON (e.g. a workflow input)', () => {
    const engine = loadPolicyEngine({ packs: ['advanced'] });
    const again = createPolicyEngine(JSON.parse(JSON.stringify(engine.rules)) as CompiledRule[]);
    expect(again.decide(sqlDelete(42))).toEqual(engine.decide(sqlDelete(42)));
  });
});
