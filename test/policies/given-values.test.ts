/**
 * Binding by kind (issue 10): a value of a typed effect field (amount, recipient, payee, host)
 * binds only to values the user gave AS that kind (policies/engine/given-values.ts, read by
 * provenance.ts `classifyAs`). Both directions, one table per kind: what must bind (so the user's
 * own requests pass without a human) and what must not (numbers and words the user wrote for
 * something else, chosen by an injection).
 */
import { describe, expect, it } from 'vitest';
import { buildPolicyRequest } from '../../policies/build-policy-request';
import { givenAtomsOfText, parseMoneyNumber, withoutMentions } from '../../policies/engine/given-values';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import type { ValueSource } from '../../policies/engine/policy-request';
import { buildProvenanceIndex, classifyArguments, classifyAs, trustedAtomsIn, type BindingKind } from '../../policies/engine/provenance';
import { TaskSchema } from '../../task/task-schema';

const IBAN = 'DE89370400440532013000';
const bindsAs = (intent: string, binding: BindingKind, value: string | number, taskValues: string[] = []): ValueSource =>
  classifyAs(buildProvenanceIndex({ intent, taskValues }), binding, value);
const amount = (currency?: string): BindingKind => ({ kind: 'amount', ...(currency === undefined ? {} : { currency }) });
const party = (as = 'any'): BindingKind => ({ kind: 'party', as });

describe('money numbers', () => {
  it.each([
    ['20', '20'],
    ['20.00', '20'],
    ['1,234.56', '1234.56'],
    ['1.234,56', '1234.56'],
    ['20,50', '20.5'],
    ["1'234.50", '1234.5'],
    ['1,234', '1234'],
    ['20,-', '20'],
    ['abc', undefined],
    ['1,23,4', undefined],
    ['2026-03-01', undefined],
  ])('%s reads %s', (text, expected) => {
    expect(parseMoneyNumber(text)).toBe(expected);
  });
});

describe('amounts: a number binds only when the user wrote it as money', () => {
  it.each([
    // should bind: currency sign, code or word; `amount`/`sum`; a payment verb directly before it
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 20, 'USD'],
    ['Pay invoice 77 ($20.00) from my landlord.', 20, 'USD'],
    ['Pay 1,234.56 USD to the supplier.', 1234.56, 'USD'],
    ['Send €20 to my sister.', 20, 'EUR'],
    ['Send 20€ to my sister.', 20, 'EUR'],
    ['Move 30 EUR to savings.', 30, 'EUR'],
    ['Move 20.00 USD to savings.', 20, 'USD'],
    ['Move 20.00 usd to savings.', 20, 'USD'],
    ['Move USD 45 to savings.', 45, 'USD'],
    ['Move 45USD to savings.', 45, 'USD'],
    ['Überweise 1.234,56 € an den Vermieter.', 1234.56, 'EUR'],
    ['Pay 20,50 EUR for the parking.', 20.5, 'EUR'],
    ['Pay £30 to the club.', 30, 'GBP'],
    ['Pay US$12 to the shop.', 12, 'USD'],
    ['Tip 50 dollars to the driver.', 50, 'USD'],
    ['Pay the rent, the amount is 35.', 35, undefined],
    ['Pay the rent, amount: 35.', 35, undefined],
    ['Pay the rent for the amount of 35 to the landlord.', 35, 'USD'],
    ['Pay a sum of 35 to the landlord.', 35, undefined],
    ['Pay 20 to Bob.', 20, undefined],
    ['Transfer 15 now.', 15, 'EUR'],
    ['Pay 20.', 20, undefined],
    ['Pay $1,200 for the laptop.', 1200, 'USD'],
  ] as const)('%s → %s %s binds', (intent, value, currency) => {
    expect(bindsAs(intent, amount(currency), value)).toBe('user');
  });

  it.each([
    // must not bind: numbers the user wrote for something else
    ['Pay invoice 77 ($20.00) from my landlord.', 77, 'USD'],
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 3704, 'USD'],
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 89, 'USD'],
    ['Pay the rent of $20 due on March 15.', 15, undefined],
    ['Pay $20 for 3 tickets.', 3, undefined],
    ['Pay 3 invoices from March.', 3, undefined],
    ['Pay invoice 77 to the landlord.', 77, undefined],
    ['Book room 101 for $90.', 101, undefined],
    ['Call +49 170 2222222 and pay $20.', 170, undefined],
    ['Update to version 2.5 and pay $20.', 2.5, undefined],
    ['Pay order #4471 ($20).', 4471, undefined],
    ['Pay $20 with a 10% tip.', 10, undefined],
    ['PAY ALL 77 INVOICES AND $20 TO BOB.', 77, undefined],
    // money the user wrote as a bound or a state, not as an amount to pay
    ['Pay the invoice; my balance is $90.', 90, 'USD'],
    ['Book a hotel with a budget of $500.', 500, 'USD'],
    ['Pay the plumber, up to $100.', 100, 'USD'],
    ['Pay the plumber, no more than 80 EUR.', 80, 'EUR'],
    ['Pay the 2026 fee of 20 EUR.', 2026, 'EUR'],
    // the currency must agree when both are stated
    ['Send €20 to my sister.', 20, 'USD'],
    ['Pay £30 to the club.', 30, 'EUR'],
    // other amounts
    ['Pay $20 to Bob.', 21, undefined],
    ['Pay $20 to Bob.', 200, undefined],
  ] as const)('%s → %s %s does not bind', (intent, value, currency) => {
    expect(bindsAs(intent, amount(currency), value)).not.toBe('user');
  });

  it('an amount in minor units is judged as the amount it stands for', () => {
    expect(bindsAs('Pay $20 to Bob.', amount('cents'), 2000)).toBe('user');
    expect(bindsAs('Pay invoice 77 ($20) to Bob.', amount('cents'), 7700)).not.toBe('user');
  });

  it('a number the user declared in the task file is an account, not an amount; money they declared is an amount', () => {
    expect(bindsAs('Pay the bill.', amount(), 77, ['77'])).toBe('literal');
    expect(bindsAs('Pay the bill.', amount('USD'), 20, ['$20'])).toBe('user');
  });
});

describe('recipients and payees: a name binds only where the user wrote it as one', () => {
  it.each([
    // should bind: recognisable forms anywhere
    ['Send the report to bob@example.com.', 'email', 'bob@example.com'],
    ['Send the report to bob@example.com.', 'email', 'Bob <BOB@example.com>'],
    ['Send the report to bob@example.com.', 'email', 'mailto:bob@example.com'],
    ['Post the notes to #finance.', 'channel', '#finance'],
    ['Post the notes to #finance.', 'channel', 'finance'],
    ['Post the notes to #finance.', 'chat-user', '#finance'],
    ['Send @bob a direct message.', 'chat-user', 'bob'],
    ['Send @bob a direct message.', 'chat-user', '@Bob'],
    ['Text +44 20 7946 0958 that I landed.', 'phone', '+442079460958'],
    ['Text +44 20 7946 0958 that I landed.', 'phone', '0044 20 7946 0958'],
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 'iban', IBAN],
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 'any', 'de89 3704 0044 0532 0130 00'],
    // names in a recipient role
    ['Message Alice that the build is green.', 'chat-user', 'alice'],
    ['message alice that the build is green', 'chat-user', 'Alice'],
    ['DM bob the figures.', 'chat-user', 'bob'],
    ['Please ping carol about the deploy.', 'chat-user', 'carol'],
    ['Tell Carol and Dave the plan.', 'chat-user', 'dave'],
    ['Notify Alice, Bob and Carol.', 'chat-user', 'bob'],
    ['Send the summary to Bob.', 'chat-user', 'bob'],
    ['Forward the invoice to erin and frank.', 'chat-user', 'frank'],
    ['Check the figures, then send them to Bob tomorrow.', 'chat-user', 'bob'],
    ['Message Alice Smith about lunch.', 'chat-user', 'Alice Smith'],
    ['Message Alice Smith about lunch.', 'chat-user', 'alice  smith'],
    ['Send @alice.smith the notes.', 'chat-user', 'Alice.Smith'],
    ['Post the notes to #team-finance.', 'channel', '#team-finance'],
    ['Post the notes in the finance channel.', 'channel', 'finance'],
    ['Post the notes in channel ops-alerts.', 'channel', 'ops-alerts'],
    ['DM user invoice the figures.', 'chat-user', 'invoice'],
    ['Pay Alice $20 for lunch.', 'any', 'alice'],
    ['Pay $20 to account 12345678.', 'account', '12345678'],
    ['Pay $20 to account number: 1234-5678.', 'account', '12345678'],
    ['Wire $20 to 12345678.', 'account', '1234 5678'],
    ["Send the notes to Bob's inbox.", 'chat-user', 'bob'],
    ['Call 415-555-0100 and tell them I am late.', 'phone', '415 555 0100'],
  ] as const)('%s → %s %s binds', (intent, as, value) => {
    expect(bindsAs(intent, party(as), value)).toBe('user');
  });

  it.each([
    // must not bind: words and numbers written for something else
    ['Check the March invoice status and post it to #finance.', 'chat-user', 'invoice'],
    ['Check the March invoice status and post it to #finance.', 'chat-user', 'march'],
    ['Check the March invoice status and post it to #finance.', 'chat-user', 'finance'],
    ['Check the March invoice status and post it to #finance.', 'chat-user', 'check'],
    ['Email invoice 77 to bob@example.com.', 'chat-user', 'invoice'],
    ['Send it to the team.', 'chat-user', 'team'],
    ['Message my manager about it.', 'chat-user', 'manager'],
    ['Send it to the finance team.', 'chat-user', 'finance'],
    ['I need to reconcile the books.', 'chat-user', 'reconcile'],
    ['Pay invoice 77 to the landlord.', 'any', 'invoice'],
    ['Pay invoice 77 to the landlord.', 'any', 'landlord'],
    ['Summarise the report for the board.', 'chat-user', 'board'],
    ['Post the notes to #finance.', 'chat-user', 'finance'],
    ['Send @carol the notes.', 'chat-user', '@carol mallory'],
    ['Send @carol the notes.', 'chat-user', 'carol mallory'],
    ['Message Alice Smith about lunch.', 'chat-user', 'smith'],
    // a full name is not its first name, and separators are part of a handle or channel
    ['Message Alice Smith about lunch.', 'chat-user', 'alice'],
    ['Message Alice Smith about lunch.', 'chat-user', 'alice.smith'],
    ['Message Alice Smith about lunch.', 'chat-user', 'alice_smith'],
    ['Send @alice.smith the notes.', 'chat-user', 'alice_smith'],
    ['Send @alice the notes.', 'chat-user', 'alice_'],
    ['Post the notes to #finance.', 'channel', '#finance-'],
    ['Post the notes to #team-finance.', 'channel', '#team.finance'],
    // numbers that are not accounts or phones
    ['Pay invoice 123456 ($20) today.', 'account', '123456'],
    ['Pay the rent due 2026-03-01.', 'phone', '20260301'],
    ['Pay the rent due 2026-03-01.', 'any', '2026-03-01'],
    ['Order 12345678 arrived; tell Bob.', 'any', '12345678'],
    // an IBAN group is not an account
    ['Pay $20 to DE89 3704 0044 0532 0130 00.', 'account', '0532013000'],
  ] as const)('%s → %s %s does not bind', (intent, as, value) => {
    expect(bindsAs(intent, party(as), value)).not.toBe('user');
  });

  it('a value the user declared in the task file binds as the kind its form says', () => {
    expect(bindsAs('Pay the bill.', party('account'), '12345678', ['12345678'])).toBe('user');
    expect(bindsAs('Pay the bill.', party('chat-user'), 'alice', ['Alice'])).toBe('user');
    expect(bindsAs('Pay the bill.', party('chat-user'), 'bill', ['Alice'])).toBe('literal');
  });
});

describe('hosts: a host binds only to a host the user named', () => {
  it.each([
    ['Fetch https://api.example.com/v1/rates.', 'api.example.com', 'user'],
    ['Fetch https://api.example.com/v1/rates.', 'API.example.com:443', 'user'],
    ['Check the invoice status.', 'invoice', 'literal'],
    ['Check the intranet page.', 'intranet', 'literal'],
    ['Fetch the health page of localhost:3000.', 'localhost', 'user'],
    ['Fetch intranet:8080/status for me.', 'intranet', 'user'],
    ['Run the tests on localhost.', 'localhost', 'user'],
    ['Fetch intranet:8080/status for me.', 'status', 'literal'],
    ['Fetch http://intranet:8080/status for me.', 'intranet', 'user'],
  ] as const)('%s → %s is %s', (intent, host, expected) => {
    expect(bindsAs(intent, { kind: 'host' }, host)).toBe(expected);
  });

  it('a host the task lists binds, single-label ones with a port included; a bare declared word is not a host', () => {
    expect(bindsAs('Check the intranet page.', { kind: 'host' }, 'intranet', ['intranet:8080'])).toBe('user');
    expect(bindsAs('Check the intranet page.', { kind: 'host' }, 'localhost', ['localhost'])).toBe('user');
    expect(bindsAs('Check the intranet page.', { kind: 'host' }, 'intranet', ['intranet'])).toBe('literal');
  });
});

describe('paths: a path binds only to a path the user wrote, or one under a folder they wrote', () => {
  it.each([
    ['Write a short status report to out/status.md.', 'out/status.md', 'user'],
    ['Write a short status report to out/status.md.', '/workspace/out/status.md', 'user'],
    ['Write a short status report to out/status.md.', './out//status.md', 'user'],
    ['Summarise notes.txt for me.', 'notes.txt', 'user'],
    ['Put the reports into `reports/2026/`.', 'reports/2026/march.md', 'user'],
    ['Write a short status report to out/status.md.', 'out/other.md', 'literal'],
    ['Write a short status report to out/status.md.', 'out/status.md/../../secrets.env', 'literal'],
    ['Check the invoice status.', 'invoice', 'literal'],
    ['Check the invoice status.', 'status', 'literal'],
  ] as const)('%s → %s is %s', (intent, path, expected) => {
    expect(bindsAs(intent, { kind: 'path' }, path)).toBe(expected);
  });

  it('a path rule holds a file named like a word of the request, and lets the file the user named through', () => {
    const engine = loadPolicyEngine({ packs: [], sentences: ['never write to a file the user did not give without approval'] });
    const task = TaskSchema.parse({ user: 'dana@example.com', intent: 'Check the invoice status and write it to out/status.md.', agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'x' }] } }, tools: { builtin: ['fs.write'] } });
    const decide = (path: string) =>
      engine.decide(buildPolicyRequest({ task, workflowId: 'wf', depth: 0, chain: [], tool: 'fs.write', args: { path, content: 'x' }, priorOutputs: [], trustedOutputs: [], effect: undefined, now: '2026-03-02T10:00:00Z' })).decision;
    expect(decide('out/status.md')).toBe('allow');
    expect(decide('invoice')).toBe('approval');
  });
});

describe('trusted data binds by kind too', () => {
  const trusted = [
    { rows: [{ id: 77, name: 'Bob', amount: 20, quantity: 3 }] },
    { content: 'Invoice March: pay 80 USD to DE89 3704 0044 0532 0130 00 (landlord).' },
    { content: 'name,email,phone\nJane,jane@example.com,+49 170 2222222\n' },
  ];
  const index = buildProvenanceIndex({ intent: 'Pay the March invoice.', trusted, toolOutputs: [{ body: 'pay 77 to user quantity' }] });

  it.each([
    [amount('USD'), 20, 'trusted'],
    [amount('USD'), 80, 'trusted'],
    [amount('EUR'), 80, 'literal'],
    [amount(), 77, 'tool-output'],
    [amount(), 3, 'literal'],
    [party('chat-user'), 'bob', 'trusted'],
    [party('email'), 'jane@example.com', 'trusted'],
    [party('phone'), '+491702222222', 'trusted'],
    [party('iban'), IBAN, 'trusted'],
    [party('chat-user'), 'quantity', 'tool-output'],
    [party('chat-user'), 'landlord', 'literal'],
  ] as const)('%j %s is %s', (binding, value, expected) => {
    expect(classifyAs(index, binding, value)).toBe(expected);
  });

  it('a sub-agent inherits as trusted the typed values its parent had from trusted data', () => {
    const typed = (text: string) => trustedAtomsIn(index, text).filter((a) => a.startsWith('money:') || a.startsWith('name:')).sort();
    expect(typed('Pay Bob $20 now.')).toEqual(['money:20', 'money:20:USD', 'name:bob']);
    expect(typed('Pay invoice 77 now.')).toEqual([]);
  });
});

describe('arguments named as a kind, for tools that declare nothing', () => {
  it('classifies amount-, recipient- and payee-named arguments as that kind, others as text', () => {
    const provenance = classifyArguments(
      { amount: 77, to: 'invoice', channel: 'finance', iban: IBAN, memo: 'invoice 77' },
      { intent: `Pay invoice 77 ($20) to ${IBAN} and post it to #finance.` },
    );
    expect(provenance).toEqual({ '/amount': 'literal', '/to': 'literal', '/channel': 'user', '/iban': 'user', '/memo': 'user' });
  });
});

describe('end to end: the foundation pack lets the user\'s own requests through and holds the rest', () => {
  const engine = loadPolicyEngine({ packs: ['foundation'] });
  const tool = (name: string, effects: unknown) => ({ name, description: name, source: 'return 1;', capabilities: ['http.fetch'], effects });
  const taskOf = (intent: string) =>
    TaskSchema.parse({
      user: 'dana@example.com',
      intent,
      agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'x' }] } },
      tools: {
        builtin: ['http.fetch'],
        custom: [
          tool('bank.transfer', { payees: [{ arg: 'iban', kind: 'iban' }], amounts: [{ arg: 'amount', currency: { arg: 'currency' } }], families: ['payment'] }),
          tool('mail.send', { recipients: [{ arg: 'to', kind: 'email' }], families: ['messaging'] }),
          tool('chat.post', { recipients: [{ arg: 'channel', kind: 'channel' }, { arg: 'user', kind: 'chat-user' }], families: ['messaging'] }),
        ],
      },
    });
  const decide = (intent: string, name: string, args: Record<string, unknown>) =>
    engine.decide(buildPolicyRequest({ task: taskOf(intent), workflowId: 'wf', depth: 0, chain: [], tool: name, args, priorOutputs: [{ body: 'pay 77 to invoice, DM invoice' }], trustedOutputs: [], effect: undefined, now: '2026-03-02T10:00:00Z' })).decision;

  it.each([
    [`Pay $20 to ${IBAN}.`, 'bank.transfer', { iban: IBAN, amount: 20, currency: 'USD' }, 'allow'],
    [`Pay 20 EUR to ${IBAN}.`, 'bank.transfer', { iban: IBAN, amount: 20, currency: 'EUR' }, 'allow'],
    [`Pay 20 EUR to ${IBAN}.`, 'bank.transfer', { iban: IBAN, amount: 20, currency: 'USD' }, 'approval'],
    [`Pay invoice 77 ($20) to ${IBAN}.`, 'bank.transfer', { iban: IBAN, amount: 77, currency: 'USD' }, 'approval'],
    ['Send the report to bob@example.com.', 'mail.send', { to: 'bob@example.com' }, 'allow'],
    ['Post the summary to #finance.', 'chat.post', { channel: '#finance' }, 'allow'],
    ['Post the invoice summary to #finance.', 'chat.post', { user: 'invoice' }, 'approval'],
    ['Message Alice that the invoice is paid.', 'chat.post', { user: 'alice' }, 'allow'],
    ['Message Alice that the invoice is paid.', 'chat.post', { user: 'invoice' }, 'approval'],
  ] as const)('%s: %s %j is %s', (intent, name, args, expected) => {
    expect(decide(intent, name, { ...args })).toBe(expected);
  });
});

describe('the grammar reads roles, not words', () => {
  it('gives the money, names and channels of a request, and nothing else', () => {
    expect([...givenAtomsOfText('Pay invoice 77 ($20.00) to IBAN DE89 3704 0044 0532 0130 00, then message Alice and post it to #finance.')].sort()).toEqual([
      'channel:finance',
      'money:20',
      'money:20:USD',
      'name:alice',
    ]);
  });
});

describe('what the user only mentions is not given (withoutMentions)', () => {
  const IBAN = 'GB82WEST12345698765432';
  const given = (intent: string, binding: BindingKind, value: string | number) => classifyAs(buildProvenanceIndex({ intent }), binding, value);
  const party = (as: string): BindingKind => ({ kind: 'party', as });
  const usd: BindingKind = { kind: 'amount', currency: 'USD' };
  it.each([
    // questions about something, reported words, negations, sources, channels read from
    [`An e-mail asks me to pay $50 to ${IBAN}. Is it a scam?`, party('iban'), IBAN, 'literal'],
    [`An e-mail asks me to pay $50 to ${IBAN}. Is it a scam?`, usd, 50, 'literal'],
    [`Bob says we owe $50 to ${IBAN}; check the ledger.`, party('iban'), IBAN, 'literal'],
    ['Is the invoice from billing@vendor.example legit?', party('email'), 'billing@vendor.example', 'literal'],
    [`Should I pay ${IBAN}?`, party('iban'), IBAN, 'literal'],
    ['Summarise the email from bob@x.org.', party('email'), 'bob@x.org', 'literal'],
    ['Summarise the posts by @mallory.', party('chat-user'), '@mallory', 'literal'],
    ['Summarise the message Mallory posted.', party('chat-user'), 'mallory', 'literal'],
    ['Accept the invite Mallory sent.', party('chat-user'), 'mallory', 'literal'],
    ['Summarise the #vendors channel and post it to #team.', party('channel'), '#vendors', 'literal'],
    ['Read the vendors channel, then post the summary to #team.', party('channel'), 'vendors', 'literal'],
    ['Pay the $20 rent. Do not pay the $90 late fee.', usd, 90, 'literal'],
    ["Don't e-mail carol@x.org about it.", party('email'), 'carol@x.org', 'literal'],
    ['My last bill was $95; pay this one.', usd, 95, 'literal'],
    // requests, including polite questions, keep their values
    [`Can you pay $50 to ${IBAN}?`, party('iban'), IBAN, 'user'],
    [`Could you pay $50 to ${IBAN}?`, usd, 50, 'user'],
    ['Pay the $20 rent. Do not pay the $90 late fee.', usd, 20, 'user'],
    ['Summarise the #vendors channel and post it to #team.', party('channel'), '#team', 'user'],
    ['Check my inbox and tell me what is urgent, then email alice@x.org the summary.', party('email'), 'alice@x.org', 'user'],
    ["Don't forget to pay $20 to the landlord.", usd, 20, 'user'],
    ['Reply to the mail from bob@x.org.', party('email'), 'bob@x.org', 'user'],
    ['Forward the mail from bob@x.org to carol@y.org.', party('email'), 'carol@y.org', 'user'],
    ['Message Mallory about the contract.', party('chat-user'), 'mallory', 'user'],
    ['Pay my power bill of $45.20 to the landlord.', usd, 45.2, 'user'],
  ] as const)('%s: %j %s is %s', (intent, binding, value, expected) => {
    expect(given(intent, binding, value)).toBe(expected);
  });

  it('blanks in place, keeping offsets and line breaks', () => {
    const text = 'Is it a scam?\nPay $20 to bob@x.org.';
    const out = withoutMentions(text);
    expect(out).toHaveLength(text.length);
    expect(out.split('\n')[1]).toBe('Pay $20 to bob@x.org.');
    expect(out.split('\n')[0]?.trim()).toBe('');
  });
});
