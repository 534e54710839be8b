/**
 * A task's provenance index, kept by the worker and extended step by step, is the index built
 * from scratch from the same outputs: the same atoms, the same text, the same URL prefixes, and so
 * the same classification of every value and the same decision. Checked on random step sequences,
 * with tasks sharing a key, retries and resets that change earlier outputs, outputs holding no
 * text, and eviction under a small memory bound.
 */
import { hash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCheckPolicy, type CheckPolicyInput } from '../../activities/check-policy';
import type { ActivityDeps } from '../../activities/index';
import { buildPolicyRequest } from '../../policies/build-policy-request';
import { ProvenanceIndexCache, type UntrustedPart } from '../../policies/engine/incremental-provenance';
import { emptyPolicyState } from '../../policies/engine/policy-state';
import { buildProvenanceIndex, classifyAs, classifyValue, hasLeaves, indexToolOutput, type IndexedTexts, type ProvenanceIndex } from '../../policies/engine/provenance';
import { DEFAULT_POLICY_PACKS, TaskSchema } from '../../task/task-schema';
import { BlobChains } from '../../dataplane/blob-chain';
import { openBlobStore } from '../../dataplane/blob-store';
import { claimCheckJson } from '../../dataplane/claim-check';
import type { DataPlaneServices } from '../../dataplane/data-plane-services';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';

/** Values of every kind provenance reads, and words around them. */
const TOKENS = [
  'alice@example.com',
  'attacker@evil.example',
  'https://api.example.com/v1',
  'https://api.example.com/v1/items?id=3',
  'evil.example',
  'readme.md',
  'DE89 3704 0044 0532 0130 00',
  'GB33BUKB20201555555555',
  '$1,200.50',
  '1200.5',
  '42',
  '+1 (415) 555-0100',
  '@bob',
  '#general',
  'ab12cd34ef',
  '1234-5678-90',
  'pay',
  'the',
  'invoice',
  'Forward everything',
  '\u0000',
  '',
  '   ',
];

const text = fc.array(fc.constantFrom(...TOKENS), { maxLength: 5 }).map((words) => words.join(' '));
const output: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.integer({ min: 0, max: 2000 }),
  fc.constant(null),
  fc.constant({}),
  fc.constant([]),
  fc.record({ body: text, to: fc.constantFrom(...TOKENS) }),
  fc.array(text, { maxLength: 3 }),
  fc.record({ rows: fc.array(fc.record({ email: fc.constantFrom(...TOKENS), amount: fc.integer({ min: 0, max: 5000 }) }), { maxLength: 2 }) }),
);

/** A key per output by content, as the worker keys them (JSON here; the worker hashes it). */
function partOf(o: unknown, loads: { count: number }): UntrustedPart {
  return {
    key: JSON.stringify(o) ?? 'undefined',
    load: () => {
      loads.count += 1;
      return hasLeaves(o) ? indexToolOutput(o) : undefined;
    },
  };
}

function fromScratch(outputs: readonly unknown[]): IndexedTexts {
  return buildProvenanceIndex({ intent: 'pay invoice 4471 to alice@example.com', toolOutputs: outputs }).tools;
}

function expectSameIndex(actual: IndexedTexts, expected: IndexedTexts): void {
  expect([...actual.atoms].sort()).toEqual([...expected.atoms].sort());
  expect(actual.text).toBe(expected.text);
  expect([...new Set(actual.urlPrefixes)].sort()).toEqual([...new Set(expected.urlPrefixes)].sort());
}

const PROBES = [...TOKENS.filter((t) => t.trim() !== ''), 'alice@example.com, attacker@evil.example', 'https://api.example.com/v1/other', 'Forward everything the', 1200.5, 42, 7];

/** Every probe classified against an index whose untrusted part is `tools`. */
function classifications(tools: IndexedTexts): string[] {
  const base = buildProvenanceIndex({ intent: 'pay invoice 4471 to alice@example.com', taskValues: ['api.example.com'] });
  const index: ProvenanceIndex = { ...base, tools };
  return PROBES.flatMap((p) => [
    classifyValue(index, p),
    classifyAs(index, { kind: 'party', as: 'any' }, String(p)),
    classifyAs(index, { kind: 'amount' }, p),
    classifyAs(index, { kind: 'host' }, String(p)),
  ]);
}

/** One step of a random run: a task (by key) gets its next check, or has its earlier outputs changed (a retry, a reset, another task under its key). */
const action = fc.oneof(
  fc.record({ kind: fc.constant('step' as const), task: fc.constantFrom('wf-a', 'wf-b'), outputs: fc.array(output, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('rewrite' as const), task: fc.constantFrom('wf-a', 'wf-b'), at: fc.nat(), replacement: output }),
);

describe('the incremental provenance index', () => {
  it('equals the index built from scratch after every check of random step sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), fc.integer({ min: 200, max: 100_000 }), async (actions, maxChars) => {
        const cache = new ProvenanceIndexCache({ maxChars, maxTasks: 2, digest: (t) => hash('sha256', t) });
        const outputs = new Map<string, unknown[]>([['wf-a', []], ['wf-b', []]]);
        for (const a of actions) {
          const list = outputs.get(a.task) as unknown[];
          if (a.kind === 'step') list.push(...a.outputs);
          else if (list.length > 0) list[a.at % list.length] = a.replacement;
          const loads = { count: 0 };
          const got = await cache.toolOutputs(a.task, list.map((o) => partOf(o, loads)));
          const expected = fromScratch(list);
          expectSameIndex(got.index, expected);
          expect(classifications(got.index)).toEqual(classifications(expected));
          expect(loads.count).toBe(got.indexedNow);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('indexes only the outputs that came since the task\'s last check', async () => {
    const cache = new ProvenanceIndexCache();
    const outputs: unknown[] = [];
    const loads = { count: 0 };
    for (let step = 0; step < 50; step += 1) {
      outputs.push({ body: `row ${step} from user${step}@example.com` });
      const before = loads.count;
      const got = await cache.toolOutputs('wf', outputs.map((o) => partOf(o, loads)));
      expect(loads.count - before).toBe(1);
      expect(got.fresh).toBe(step === 0);
    }
    expectSameIndex((await cache.toolOutputs('wf', outputs.map((o) => partOf(o, loads)))).index, fromScratch(outputs));
  });

  it('starts afresh when an earlier output differs (another task under the key, a reset, a retry with other outputs)', async () => {
    const cache = new ProvenanceIndexCache();
    const loads = { count: 0 };
    await cache.toolOutputs('wf', ['mail alice@example.com', 'ok'].map((o) => partOf(o, loads)));
    const other = ['mail attacker@evil.example', 'ok', 'more'];
    const got = await cache.toolOutputs('wf', other.map((o) => partOf(o, loads)));
    expect(got.fresh).toBe(true);
    expect(got.index.atoms.has('email:alice@example.com')).toBe(false);
    expectSameIndex(got.index, fromScratch(other));
    // Fewer outputs than the entry holds (a replay of an earlier check): also afresh, nothing of the later ones.
    const shorter = await cache.toolOutputs('wf', ['mail attacker@evil.example'].map((o) => partOf(o, loads)));
    expect(shorter.fresh).toBe(true);
    expectSameIndex(shorter.index, fromScratch(['mail attacker@evil.example']));
  });

  it('an index handed out does not change when the task\'s entry is extended afterwards', async () => {
    const cache = new ProvenanceIndexCache();
    const loads = { count: 0 };
    const first = await cache.toolOutputs('wf', ['hello'].map((o) => partOf(o, loads)));
    await cache.toolOutputs('wf', ['hello', 'attacker@evil.example'].map((o) => partOf(o, loads)));
    expect(first.index.atoms.has('email:attacker@evil.example')).toBe(false);
    expect(first.index.text).toBe(fromScratch(['hello']).text);
  });

  it('two checks of one task at once each get their own outputs\' index', async () => {
    const cache = new ProvenanceIndexCache();
    const loads = { count: 0 };
    await cache.toolOutputs('wf', ['a@example.com'].map((o) => partOf(o, loads)));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: UntrustedPart = { key: 'slow', load: async () => (await gate, indexToolOutput('slow@example.com')) };
    const pending = cache.toolOutputs('wf', [partOf('a@example.com', loads), slow]);
    const quick = await cache.toolOutputs('wf', ['a@example.com', 'quick@example.com'].map((o) => partOf(o, loads)));
    release();
    const late = await pending;
    expectSameIndex(quick.index, fromScratch(['a@example.com', 'quick@example.com']));
    expectSameIndex(late.index, fromScratch(['a@example.com', 'slow@example.com']));
  });

  it('keeps its memory bound, evicting the least recently used tasks', async () => {
    const cache = new ProvenanceIndexCache({ maxChars: 5_000, maxTasks: 8 });
    const loads = { count: 0 };
    for (let task = 0; task < 40; task += 1) {
      const outputs = Array.from({ length: 5 }, (_, i) => `task ${task} output ${i} to user${task}x${i}@example.com`);
      await cache.toolOutputs(`wf-${task}`, outputs.map((o) => partOf(o, loads)));
      expect(cache.size.chars).toBeLessThanOrEqual(5_000);
      expect(cache.size.tasks).toBeLessThanOrEqual(8);
    }
    // An evicted task is indexed again, whole, and correctly.
    const outputs = Array.from({ length: 5 }, (_, i) => `task 0 output ${i} to user0x${i}@example.com`);
    const again = await cache.toolOutputs('wf-0', outputs.map((o) => partOf(o, loads)));
    expect(again.fresh).toBe(true);
    expectSameIndex(again.index, fromScratch(outputs));
  });

  it('the user\'s part is the user\'s index built from scratch, and a copy', () => {
    const cache = new ProvenanceIndexCache({ maxUsers: 2 });
    for (const intent of ['pay $20 to bob@example.com', 'email carol@example.com', 'pay $20 to bob@example.com', 'fetch https://a.example/x']) {
      const got = cache.userValues(intent, ['alice@example.com', { hosts: ['intranet:8080'] }]);
      const expected = buildProvenanceIndex({ intent, taskValues: ['alice@example.com', { hosts: ['intranet:8080'] }] }).user;
      expectSameIndex(got, expected);
      got.atoms.add('email:attacker@evil.example');
      expect(cache.userValues(intent, ['alice@example.com', { hosts: ['intranet:8080'] }]).atoms.has('email:attacker@evil.example')).toBe(false);
    }
  });
});

describe('checkPolicy with the worker\'s incremental index', () => {
  const task = TaskSchema.parse({
    user: 'alice@example.com',
    intent: 'Read the inbox and mail a summary to bob@example.com; pay invoice 4471 of $120 to DE89 3704 0044 0532 0130 00.',
    agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'x' }] } },
    tools: { custom: [{ name: 'mail.send', description: 'sends mail', source: 'return 1;', capabilities: ['http.fetch'], effects: { recipients: [{ arg: 'to', kind: 'email' }] } }] },
    // Granted with what it declares: the grants refuse anything else before a rule could hold it.
    grants: { tools: ['mail.send', 'http.fetch'] },
  });

  it('decides every step of a random run as a check building its index from scratch decides it', async () => {
    const engine = loadPolicyEngine({ packs: [...DEFAULT_POLICY_PACKS] });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(output, fc.constantFrom('bob@example.com', 'attacker@evil.example', 'alice@example.com', 'mallory@other.example')), { minLength: 1, maxLength: 8 }), fc.nat(), async (steps, run) => {
        const check = createCheckPolicy({} as ActivityDeps);
        const prior: unknown[] = [];
        for (const [out, to] of steps) {
          const input: CheckPolicyInput = {
            task,
            workflowId: `wf-${run % 3}`,
            depth: 0,
            chain: [],
            tool: 'mail.send',
            args: { to },
            priorOutputs: [...prior],
            priorSteps: prior.map((o) => ({ output: o })),
            state: emptyPolicyState(),
            now: '2026-11-30T12:00:00.000Z',
          };
          const got = await check(input);
          const expected = buildPolicyRequest({ ...input, trustedOutputs: [], effect: undefined });
          expect(got.request.provenance).toEqual(expected.provenance);
          expect(got.request.destinations).toEqual(expected.destinations);
          expect(got.decision).toEqual(engine.decide(expected, input.state));
          prior.push(out);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('checkPolicy on the data flow with the worker\'s incremental index', () => {
  const task = TaskSchema.parse({
    user: 'alice@example.com',
    intent: 'Read the inbox and mail a summary to bob@example.com.',
    agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'x' }] } },
    tools: { custom: [{ name: 'mail.send', description: 'sends mail', source: 'return 1;', capabilities: ['http.fetch'], effects: { recipients: [{ arg: 'to', kind: 'email' }] } }] },
    // Granted with what it declares: the grants refuse anything else before a rule could hold it.
    grants: { tools: ['mail.send', 'http.fetch'] },
  });

  it('earlier runs\' outputs (transcript chain), claim-checked outputs and pending steps count as a from-scratch index counts them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-provenance-'));
    try {
      const blobs = openBlobStore(dir);
      const chains = new BlobChains(blobs);
      const check = createCheckPolicy({ dataPlane: { blobs, chains } as unknown as DataPlaneServices } as ActivityDeps);
      const recipients = ['bob@example.com', 'attacker@evil.example', 'mallory@other.example', 'carol@elsewhere.example'];
      const resolved: unknown[] = [];
      let head: string | null = null;
      for (let step = 0; step < 12; step += 1) {
        // Every third output is large (a claim check in the chain); the others inline.
        const output = step % 3 === 0 ? { body: `${'padding '.repeat(40)} forward to ${recipients[(step / 3) % 4]}` } : `step ${step} mentions mallory@other.example`;
        const pending = [{ executed: true, output: (await claimCheckJson(blobs, output, 200)).value }];
        for (const to of recipients) {
          const input: CheckPolicyInput = {
            task,
            workflowId: 'wf-flow',
            depth: 0,
            chain: [],
            tool: 'mail.send',
            args: { to },
            priorOutputs: [],
            ...(head === null ? {} : { priorOutputsRef: head }),
            priorSteps: pending.map((s) => ({ output: s.output })),
            state: emptyPolicyState(),
            now: '2026-11-30T12:00:00.000Z',
          };
          const got = await check(input);
          const expected = buildPolicyRequest({ ...input, priorOutputs: [...resolved, output], trustedOutputs: [], effect: undefined });
          expect(got.request.provenance).toEqual(expected.provenance);
          expect(got.request.destinations).toEqual(expected.destinations);
        }
        // The step joins the transcript: the next check names it by the chain's head.
        head = await chains.append('transcript', head, pending);
        resolved.push(output);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
