/**
 * The custody append path, made cheaper per tool call (issue 17), records exactly what it did:
 * - an insert the file did not keep is never reported as appended (one statement inserts and
 *   detects a taken record key; a key taken earlier or in the same batch returns the first record);
 * - the record an append returns reads back equal to the stored one, its body parsed on demand;
 * - a span's attribute keys, judged once per key text for the default deny-list, are recorded,
 *   dropped and scrubbed as judging every key afresh does, under any deny-list, in any order;
 * - times formatted once per second read the same as formatting each afresh.
 */
import { createHash } from 'node:crypto';
import { SpanKind, type Attributes, type HrTime } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { isDeniedAttributeKey } from '../../custody/attributes';
import { canonicalize } from '../../custody/canonical-json';
import { CustodyLedger } from '../../custody/ledger';
import { recordHash } from '../../custody/ledger-record';
import { hrTimeToIso, scrubTokens, spanToRecordBody, wellFormed } from '../../custody/span-record';
import { verifyLedger } from '../../custody/verify-ledger';
import { fill, openTempLedger, type TempLedger } from './fixtures/ledger-fixture';

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

const input = (recordKey: string, body: unknown = { recordKey }) => ({ recordKey, taskId: 'task-a', workflowId: 'task-a', kind: 'event', body });

describe('custody append: what the file kept is what is reported', () => {
  it('fails a batch whose insert the file silently dropped, and keeps the chain whole', () => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const { ledger } = temp;
    fill(ledger, 3);
    // A trigger that swallows the row (RAISE(IGNORE)): the old path reported the record appended,
    // moved the chain's head past a hash the file never held, and the next append chained to it.
    temp.raw().exec("CREATE TRIGGER swallow BEFORE INSERT ON records WHEN NEW.record_key = 'swallowed' BEGIN SELECT RAISE(IGNORE); END");
    expect(codeOf(() => ledger.appendMany([input('kept-before'), input('swallowed')]))).toBe('ERR_CUSTODY_WRITE');
    expect(ledger.recordByKey('kept-before')).toBeUndefined();
    expect(ledger.size()).toBe(3);
    temp.raw().exec('DROP TRIGGER swallow');
    const { record } = ledger.append(input('after'));
    expect(record).toMatchObject({ seq: 3, prevHash: ledger.record(2)?.hash });
    expect(verifyLedger(ledger)).toMatchObject({ ok: true, totalRecords: 4 });
  });

  const duplicates: [string, (t: TempLedger) => void, string[], boolean[]][] = [
    ['a key appended in an earlier batch', (t) => t.ledger.append(input('dup', { first: true })), ['dup', 'new'], [false, true]],
    ['a key twice in one batch', () => undefined, ['dup', 'dup', 'new'], [true, false, true]],
    ['a key another connection appended', (t) => openTempLedgerAt(t).append(input('dup', { first: true })), ['new', 'dup'], [true, false]],
  ];

  it.each(duplicates)('%s: the first record stands, the chain goes on', (_name, before, keys, appended) => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const t = temp;
    fill(t.ledger, 2);
    before(t);
    const sizeBefore = t.ledger.size();
    const results = t.ledger.appendMany(keys.map((key, i) => input(key, { first: i === 0 && key === 'dup' && appended[0] === true, i })));
    expect(results.map((r) => r.appended)).toEqual(appended);
    const first = t.ledger.recordByKey('dup');
    for (const [i, r] of results.entries()) {
      if (keys[i] === 'dup') expect(r.record).toEqual(first);
      expect(r.record).toEqual(t.ledger.recordByKey(keys[i] as string));
    }
    expect(first?.body).toMatchObject({ first: true });
    expect(t.ledger.size()).toBe(sizeBefore + appended.filter(Boolean).length);
    expect(verifyLedger(t.ledger)).toMatchObject({ ok: true });
  });

  it('returns records equal to what reads back, body included, parsed when read', () => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const { ledger } = temp;
    const body = { b: [1, 'two', { c: null }], a: -0, z: 'é\u2028' };
    const [result] = ledger.appendMany([input('lazy', body)]);
    const record = result!.record;
    expect(Object.keys(record)).toEqual(['seq', 'recordKey', 'taskId', 'workflowId', 'kind', 'prevHash', 'kid', 'appendedAt', 'body', 'hash', 'signature']);
    expect(record).toEqual(ledger.recordByKey('lazy'));
    expect(structuredClone(record)).toEqual(ledger.recordByKey('lazy'));
    expect(JSON.parse(JSON.stringify(record))).toEqual(ledger.recordByKey('lazy'));
    expect(record.body).toEqual(JSON.parse(canonicalize(body)));
    expect(record.body).toBe(record.body);
    expect(recordHash(record)).toBe(record.hash);
    record.body = { replaced: true };
    expect(record.body).toEqual({ replaced: true });
    expect({ ...record }.body).toEqual({ replaced: true });
  });
});

function openTempLedgerAt(t: TempLedger) {
  // A second ledger connection on the same file and keys (another worker process does this).
  const other = CustodyLedger.open({ stateDir: t.stateDir, checkpointEvery: 0 });
  return {
    append(record: ReturnType<typeof input>) {
      try {
        return other.append(record);
      } finally {
        other.close();
      }
    },
  };
}

/** The span's attributes as the ledger kept them before keys were judged once: every key afresh. */
function referenceAttributes(attributes: Attributes, denied: readonly string[] | undefined, redacted: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (isDeniedAttributeKey(key, denied)) {
      redacted.add(wellFormed(key));
      continue;
    }
    out[scrubTokens(key)] = typeof value === 'string' ? scrubTokens(value) : value;
  }
  return out;
}

const jws = (payload: string) => `${Buffer.from('{"alg":"EdDSA"}').toString('base64url')}.${Buffer.from(payload).toString('base64url')}.c2ln`;

describe('span records: attribute keys judged once per key text', () => {
  const provider = new BasicTracerProvider({ spanProcessors: [] });
  const keys: Attributes = {
    'gen_ai.tool.name': 'fs.read',
    'warden.credential.token': 'dropped by pattern',
    'x.api_key': 'dropped by pattern',
    authorization: 'dropped by list',
    'custom.hidden': 'dropped only under a custom list',
    [`key.${jws('in-a-key')}`]: 'a key holding a token is recorded hashed',
    'lone.\ud800.surrogate': 'mended key',
    'lone.\udc00.token': 'mended, then dropped',
    plain: jws('in-a-value'),
  };
  const lists: [string, readonly string[] | undefined][] = [
    ['the default list', undefined],
    ['a custom list', ['custom.hidden']],
    ['an empty list', []],
  ];

  function spanWith(attributes: Attributes): ReadableSpan {
    const exporter = new InMemorySpanExporter();
    const p = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    p.getTracer('t').startSpan('s', { kind: SpanKind.INTERNAL, attributes, startTime: [1767225600, 1] }).end([1767225601, 2]);
    return exporter.getFinishedSpans()[0] as ReadableSpan;
  }

  // Every order of the lists, each list twice: a remembered verdict must never answer for another list.
  const orders = [
    [0, 1, 2, 0, 1, 2],
    [1, 0, 2, 1, 2, 0],
    [2, 1, 0, 0, 2, 1],
  ];
  it.each(orders)('order %#: each list gives what judging afresh gives', (...order) => {
    void provider;
    const span = spanWith(keys);
    for (const index of order) {
      const [, denied] = lists[index] as [string, readonly string[] | undefined];
      const redacted = new Set<string>();
      const expected = referenceAttributes(keys, denied, redacted);
      const body = spanToRecordBody(span, denied === undefined ? {} : { deniedAttributes: denied });
      expect(body.attributes).toEqual(expected);
      expect(body.redactedAttributes ?? []).toEqual([...redacted].sort());
    }
  });

  it('still judges new keys after remembering more keys than it keeps', () => {
    for (let round = 0; round < 3; round += 1) {
      const many: Attributes = {};
      for (let i = 0; i < 1500; i += 1) many[`k${round}.${i}${i % 7 === 0 ? '.token' : ''}`] = i;
      // 100 per span (OpenTelemetry keeps 128 attributes), 15 spans a round: 1,500 keys pass the 1,024 kept.
      for (let from = 0; from < 1500; from += 100) {
        const part = Object.fromEntries(Object.entries(many).slice(from, from + 100));
        const redacted = new Set<string>();
        const body = spanToRecordBody(spanWith(part));
        expect(body.attributes).toEqual(referenceAttributes(part, undefined, redacted));
        expect(body.redactedAttributes).toEqual([...redacted].sort());
      }
      const redacted = new Set<string>();
      const body = spanToRecordBody(spanWith({ 'late.token': 'x', 'late.ok': 1 }));
      expect(body.attributes).toEqual(referenceAttributes({ 'late.token': 'x', 'late.ok': 1 }, undefined, redacted));
      expect(body.redactedAttributes).toEqual([...redacted].sort());
    }
  });
});

describe('span records: times formatted once per second', () => {
  const reference = ([seconds, nanos]: HrTime) => `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
  it('reads the same as formatting each time afresh, back and forth across seconds', () => {
    const base = 1767225600;
    const times: HrTime[] = [];
    for (let i = 0; i < 400; i += 1) {
      const h = createHash('sha256').update(String(i)).digest();
      times.push([base + (h[0] as number) % 4 - (i % 50 === 0 ? 86_400 * 365 : 0), h.readUInt32BE(1) % 1_000_000_000]);
    }
    times.push([0, 0], [0, 999_999_999], [base, 0], [base, 0], [1, 5], [0, 5]);
    for (const time of times) expect(hrTimeToIso(time)).toBe(reference(time));
    expect(() => hrTimeToIso([Number.NaN, 0])).toThrow(RangeError);
    expect(hrTimeToIso([base, 7])).toBe('2026-01-01T00:00:00.000000007Z');
  });
});
