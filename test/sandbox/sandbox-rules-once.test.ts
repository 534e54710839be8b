/**
 * A task's compiled rules go to a sandbox host once per `rulesKey` (they are most of a call's
 * message): later calls name the key only. A host that no longer holds the key answers before
 * the credential is checked, and the client sends the call again with the rules, so the policy
 * decides every call all the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../policies/engine/policy-state';
import { IsolatePool } from '../../sandbox/isolate-pool';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { handleHostMessage } from '../../sandbox/sandbox-host';
import { SANDBOX_RULES_UNKNOWN, type PolicyGateSpec, type SandboxRunRequest, type SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { codeOf, outputOf, toolCall } from './sandbox-test-kit';

const DENY_FETCH = 'never fetch a URL the user did not give';
// The URL came from a tool output: the rule denies the fetch (decided before it leaves, so port 9 is never reached).
const URL = 'http://127.0.0.1:9/collect?d=secret';

function spec(rulesKey: string, sentences: string[] = [DENY_FETCH]): PolicyGateSpec {
  return {
    rulesKey,
    rules: [...loadPolicyEngine({ sentences }).rules],
    state: emptyPolicyState(),
    agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
    now: '2026-03-02T10:00:00Z',
    seed: { userTexts: ['look it up'], trustedAtoms: [] },
    caller: { tool: 'look', builtin: false, args: { url: URL }, argSources: { '/url': 'tool-output' } },
    approvedRules: [],
    approvedEffects: [],
  };
}

const FETCH_EVIL = 'try { await warden.http.fetch(input.url); return "fetched"; } catch (e) { return e.code; }';
const gated = (source: string, policy: PolicyGateSpec) => ({ ...toolCall(source, { url: URL }, { http: { allowedHosts: ['127.0.0.1:9'] } }), policy });

let client: SandboxClient;
beforeAll(async () => {
  client = await SandboxClient.start();
});
afterAll(async () => client?.close());

describe('a task\'s rules sent once to a sandbox host', () => {
  it('are sent with the first call of a key only, and every call is still decided by them', async () => {
    const before = client.stats.rulesSent;
    for (let i = 0; i < 3; i += 1) expect(outputOf(await client.run(gated(FETCH_EVIL, spec('once-a'))))).toBe('ERR_POLICY_DENIED');
    expect(client.stats.rulesSent - before).toBe(1);
    // Another key is another rule set: sent once too.
    expect(outputOf(await client.run(gated('return 1;', spec('once-b'))))).toBe(1);
    expect(outputOf(await client.run(gated('return 2;', spec('once-b'))))).toBe(2);
    expect(client.stats.rulesSent - before).toBe(2);
  });

  it('are sent again to a new host (the old one died)', async () => {
    expect(outputOf(await client.run(gated(FETCH_EVIL, spec('host-a'))))).toBe('ERR_POLICY_DENIED');
    const before = client.stats.rulesSent;
    const pid = client.pid!;
    process.kill(pid, 'SIGKILL');
    // Either the call reaches the dying host (crashed) or the replacement; once on the replacement, the rules go with it.
    let response: SandboxRunResponse;
    do response = await client.run(gated(FETCH_EVIL, spec('host-a')));
    while (!response.ok && response.error.code === 'ERR_SANDBOX_CRASHED');
    expect(outputOf(response)).toBe('ERR_POLICY_DENIED');
    expect(client.pid).not.toBe(pid);
    expect(client.stats.rulesSent - before).toBeGreaterThanOrEqual(1);
  });

  it('are sent again when the host dropped them from its bounded cache, and still deny', async () => {
    expect(outputOf(await client.run(gated(FETCH_EVIL, spec('evict-a'))))).toBe('ERR_POLICY_DENIED');
    // More keys than the host keeps engines for: its cache is emptied on the way.
    for (let i = 0; i < 70; i += 1) outputOf(await client.run(gated('return 0;', spec(`evict-filler-${i}`, ['never delete more than 10 rows']))));
    const before = client.stats.rulesSent;
    expect(outputOf(await client.run(gated(FETCH_EVIL, spec('evict-a'))))).toBe('ERR_POLICY_DENIED');
    expect(client.stats.rulesSent - before).toBe(1);
  });
});

describe('the host, given a call that names rules it does not hold', () => {
  it('answers SANDBOX_RULES_UNKNOWN before checking (and using) the credential, and runs nothing', async () => {
    const checked: SandboxRunRequest[] = [];
    const gate = { check: async (request: SandboxRunRequest) => (checked.push(request), { ok: true as const }), close: async () => undefined };
    const pool = new IsolatePool();
    try {
      const { rules: _left, ...withoutRules } = spec('never-sent-here');
      const request = { type: 'run', id: '7', ...toolCall("return 'ran';"), credential: 'a.b.c', policy: withoutRules };
      const answers: unknown[] = [];
      await handleHostMessage(request, (m) => answers.push(m), { pool, gate });
      expect(answers).toEqual([expect.objectContaining({ id: '7', ok: false, error: expect.objectContaining({ code: SANDBOX_RULES_UNKNOWN }) })]);
      expect(checked).toEqual([]);
      // With the rules, the same call is checked and runs; afterwards the key alone is enough.
      await handleHostMessage({ ...request, id: '8', policy: spec('never-sent-here') }, (m) => answers.push(m), { pool, gate });
      await handleHostMessage({ ...request, id: '9' }, (m) => answers.push(m), { pool, gate });
      expect(answers.slice(1).map((a) => codeOf(a as SandboxRunResponse))).toEqual(['ok: "ran"', 'ok: "ran"']);
      expect(checked.map((r) => r.id)).toEqual(['8', '9']);
    } finally {
      await pool.drain();
      pool.close();
    }
  });
});
