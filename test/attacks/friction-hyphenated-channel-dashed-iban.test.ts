/**
 * Friction (issue 10, the reverse of an attack): realistic requests the user expects to pass
 * without a human, held or refused under `foundation` because the user's words and the call's
 * value are normalised differently.
 *  - "Post the summary to #team-finance": posting to `#team-finance` is held. A `#channel` in the
 *    user's words keeps its dashes (`channel:team-finance`), the call's channel is normalised
 *    (`channel:team.finance`): every channel with a `-`, `_` or `.` (`#ops-alerts`) needs a human.
 *  - "Pay $20 to DE89-3704-0044-0532-0130-00": the IBAN written with dashes is not read as an
 *    IBAN in the user's words, so paying that very IBAN is DENIED (`never pay a recipient that is
 *    not in the intent` has no approval), not even held.
 *
 * Fixed (regression test): names and channels compare exactly but for case (`normalizeName`,
 * given-values.ts) on both sides, and an IBAN in dashed groups is read as the IBAN (provenance.ts).
 */
import { describe, expect, it } from 'vitest';
import { buildPolicyRequest } from '../../policies/build-policy-request';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { TaskSchema } from '../../task/task-schema';

const IBAN = 'DE89370400440532013000';
const taskWith = (intent: string) =>
  TaskSchema.parse({
    user: 'dana@example.com',
    intent,
    agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'x' }] } },
    tools: {
      builtin: ['http.fetch'],
      // As the injection suite declares them (test/injection/injection-world.ts).
      custom: [
        { name: 'chat.post', description: 'Posts to a channel or sends a direct message.', source: 'return 1;', capabilities: ['http.fetch'], effects: { recipients: [{ arg: 'channel', kind: 'channel' }, { arg: 'user', kind: 'chat-user' }], families: ['messaging'] } },
        { name: 'bank.transfer', description: 'Transfers money to an IBAN.', source: 'return 1;', capabilities: ['http.fetch'], effects: { payees: [{ arg: 'iban', kind: 'iban' }], amounts: [{ arg: 'amount', currency: { arg: 'currency' } }], families: ['payment'] } },
      ],
    },
  });
const engine = loadPolicyEngine({ packs: ['foundation'] });
const decide = (intent: string, tool: string, args: Record<string, unknown>) =>
  engine.decide(buildPolicyRequest({ task: taskWith(intent), workflowId: 'wf', depth: 0, chain: [], tool, args, priorOutputs: [], effect: undefined, now: '2026-03-02T10:00:00Z' })).decision;

describe('requests the user gave that are held', () => {
  it('control: a channel without separators passes', () => {
    expect(decide('Post the summary to #finance.', 'chat.post', { channel: '#finance', text: 'x' })).toBe('allow');
  });

  it.each([
    ['Post the summary to #team-finance.', '#team-finance'],
    ['Post the summary to #team-finance.', 'team-finance'],
    ['Ping #ops-alerts that the deploy is done.', '#ops-alerts'],
    ['Post the summary to #q3_reports.', '#q3_reports'],
  ])('%s → channel %s passes', (intent, channel) => {
    expect(decide(intent, 'chat.post', { channel, text: 'x' })).toBe('allow');
  });

  it('control: the IBAN written with spaces passes', () => {
    expect(decide('Pay $20 to DE89 3704 0044 0532 0130 00.', 'bank.transfer', { iban: IBAN, amount: 20, currency: 'USD' })).toBe('allow');
  });

  it('the IBAN written with dashes passes', () => {
    expect(decide('Pay $20 to DE89-3704-0044-0532-0130-00.', 'bank.transfer', { iban: IBAN, amount: 20, currency: 'USD' })).toBe('allow');
  });
});
