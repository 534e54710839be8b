/**
 * The sandbox host's policy gate builds a call's provenance index (the user's words, the tool's
 * own source, the caller's arguments by source) at the call's first capability call, once, not
 * when the gate is set up: a tool that makes no capability call needs none, and building it was
 * most of the host's time for such a call (issue 17, activity execution). Held here: no capability
 * call builds nothing; any number of them build one index; the decisions are the ones an index
 * built up front gives (the user's URL allowed, the agent's refused); and an index that cannot be
 * built refuses the capability call (fail closed), never lets it through.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';

const counted = vi.hoisted(() => ({ builds: 0, fail: false }));

vi.mock('../../policies/engine/provenance', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../policies/engine/provenance')>();
  return {
    ...original,
    buildProvenanceIndex: (...args: Parameters<typeof original.buildProvenanceIndex>) => {
      counted.builds += 1;
      if (counted.fail) throw new Error('index unavailable');
      return original.buildProvenanceIndex(...args);
    },
  };
});

import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../policies/engine/policy-state';
import { createPolicyGate, GATE_FAILED_RULE } from '../../sandbox/policy-gate';
import type { PolicyGateSpec } from '../../sandbox/sandbox-messages';

const USER_URL = 'https://api.example.com/v1/rates';
const OTHER_URL = 'https://evil.example/collect';

function spec(): PolicyGateSpec {
  const sentences = ['never fetch a URL the user did not give'];
  const engine = loadPolicyEngine({ sentences });
  return {
    rulesKey: `index-on-use|${sentences.join('|')}`,
    rules: [...engine.rules],
    state: emptyPolicyState(),
    agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
    now: '2026-03-02T10:00:00Z',
    seed: { userTexts: [`fetch the rates from ${USER_URL}`], trustedAtoms: [] },
    caller: { tool: 'rates', builtin: false, args: {}, argSources: {} },
    approvedRules: [],
    approvedEffects: [],
  };
}

const SOURCE = 'return await warden.http.fetch(input.url);';

/** The outcome of each capability call, in order: 'applied' or the refusal's code. */
function decide(urls: readonly string[]): { outcomes: string[]; gate: ReturnType<typeof createPolicyGate> } {
  const gate = createPolicyGate(spec(), SOURCE);
  const outcomes = urls.map((url) => {
    try {
      gate.check('http.fetch', { url });
      return 'applied';
    } catch (error) {
      return (error as { code?: string }).code ?? 'threw';
    }
  });
  return { outcomes, gate };
}

beforeEach(() => {
  counted.builds = 0;
  counted.fail = false;
});

describe('the policy gate builds its provenance index on first use', () => {
  const rows: [row: string, urls: string[], outcomes: string[], builds: number][] = [
    ['no capability call (pure computation): nothing built', [], [], 0],
    ["one call of the user's URL: built once, applied", [USER_URL], ['applied'], 1],
    ["the user's URL three times: built once, all applied", [USER_URL, USER_URL, USER_URL], ['applied', 'applied', 'applied'], 1],
    ["a URL the user did not give after the user's: built once, refused", [USER_URL, OTHER_URL], ['applied', 'ERR_POLICY_DENIED'], 1],
  ];
  it.each(rows)('%s', (_case, urls, outcomes, builds) => {
    const decided = decide(urls);
    expect(decided.outcomes).toEqual(outcomes);
    expect(counted.builds).toBe(builds);
    expect(decided.gate.report().applied).toHaveLength(outcomes.filter((o) => o === 'applied').length);
  });

  it('an index that cannot be built refuses the capability call and every later one (fail closed)', () => {
    counted.fail = true;
    const { outcomes, gate } = decide([USER_URL, USER_URL]);
    expect(outcomes).toEqual(['ERR_POLICY_DENIED', 'ERR_POLICY_DENIED']);
    expect(gate.report().applied).toEqual([]);
    expect(gate.report().stopped?.matched.map((m) => m.id)).toEqual([GATE_FAILED_RULE]);
  });

  it('a gate set up for a call that makes no capability call builds nothing, even when building would fail', () => {
    counted.fail = true;
    expect(() => createPolicyGate(spec(), SOURCE)).not.toThrow();
    expect(counted.builds).toBe(0);
  });
});
