/**
 * Attack on custody off the hot path (issue 17: group commit, custody/ledger-span-exporter.ts).
 * Strings a span carries come from outside Warden: a resource path or host the model chose
 * (`warden.resource.*`), a tool's error message (the activity span's status and exception event).
 * JavaScript strings may hold a lone surrogate (JSON "\ud800" parses to one), which canonical JSON
 * refuses (not well-formed Unicode). On the old code that refusal was a TypeError thrown by the
 * batch's write: every span of the batch was dropped, those of other tasks that ended in the same
 * turn too, and `flush()` still resolved, so the activity interceptor handed the result to
 * Temporal with no custody record of it, or of its neighbours.
 *
 * Now every string a span record holds (names, status message, attribute keys and values, event
 * names) is made well-formed (lone surrogates become U+FFFD) where the record is built
 * (span-record.ts), and a batch the ledger refuses as not JSON is written span by span, so one
 * span that cannot be recorded never takes others with it.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerSpanExporter, LedgerSpanProcessor } from '../../custody/ledger-span-exporter';
import { verifyLedger } from '../../custody/verify-ledger';
import { openTempLedger, type TempLedger } from './fixtures/ledger-fixture';

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

const LONE = ['\ud800', '\udfff', 'a\udc00b', 'x\ud83d'];

type Taint = (span: import('@opentelemetry/api').Span, text: string) => void;
const PLACES: [string, Taint][] = [
  ['an attribute value (a path the model chose)', (span, text) => span.setAttribute('warden.resource.path', `/workspace/${text}.txt`)],
  ['an attribute array item', (span, text) => span.setAttribute('warden.resource.hosts', ['ok.example', text])],
  ['the status message (a tool error)', (span, text) => span.setStatus({ code: SpanStatusCode.ERROR, message: `ERR_TOOL_THREW: ${text}` })],
  ['an exception event (a tool error)', (span, text) => span.recordException(new Error(text))],
  ['an attribute key', (span, text) => span.setAttribute(`warden.x.${text}`, 1)],
  ['the span name', (span, text) => span.updateName(`execute_tool ${text}`)],
];

describe('a span holding a lone surrogate, group commit', () => {
  it.each(PLACES.flatMap(([where, taint]) => LONE.map((text) => [where, JSON.stringify(text), taint, text] as const)))('in %s (%s): recorded, and its batch neighbours too', async (_where, _shown, taint, text) => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const errors: unknown[] = [];
    const exporter = new LedgerSpanExporter({ ledger: temp.ledger, commit: 'group', onError: (error) => errors.push(error) });
    const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'warden-worker' }), spanProcessors: [new LedgerSpanProcessor(exporter)] });
    const tracer = provider.getTracer('warden');
    // Another task's span, ended in the same turn: it lands in the same batch.
    const neighbour = tracer.startSpan('execute_tool fs.read', { attributes: { [WARDEN_ATTR.taskId]: 'task-innocent' } });
    const tainted = tracer.startSpan('execute_tool fs.read', { attributes: { [WARDEN_ATTR.taskId]: 'task-attacker' } });
    taint(tainted, text);
    neighbour.end();
    tainted.end();
    // What the activity interceptor awaits before Temporal learns the result.
    await exporter.flush();
    expect(errors.map(String)).toEqual([]);
    expect(temp.ledger.records({ taskId: 'task-innocent' })).toHaveLength(1);
    expect(temp.ledger.records({ taskId: 'task-attacker' })).toHaveLength(1);
    expect(verifyLedger(temp.ledger).ok).toBe(true);
  });
});

describe('a batch the ledger refuses at once (group commit over the synchronous SQLite ledger)', () => {
  it('does not leave flush() waiting forever: it returns with the failure reported', async () => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const errors: unknown[] = [];
    const exporter = new LedgerSpanExporter({ ledger: temp.ledger, commit: 'group', onError: (error) => errors.push(error) });
    const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'warden-worker' }), spanProcessors: [new LedgerSpanProcessor(exporter)] });
    const tracer = provider.getTracer('warden');
    tracer.startSpan('first', { attributes: { [WARDEN_ATTR.taskId]: 'task-1' } }).end();
    await exporter.flush();
    expect(temp.ledger.records({ taskId: 'task-1' })).toHaveLength(1);
    // A closed ledger refuses synchronously with a TypeError: the drain ended without awaiting.
    temp.ledger.close();
    tracer.startSpan('second', { attributes: { [WARDEN_ATTR.taskId]: 'task-1' } }).end();
    await exporter.flush();
    expect(errors.map(String)).toEqual([expect.stringContaining('closed')]);
    // And the exporter keeps draining: a later flush returns too.
    tracer.startSpan('third', { attributes: { [WARDEN_ATTR.taskId]: 'task-1' } }).end();
    await exporter.flush();
    expect(errors).toHaveLength(2);
  });
});
