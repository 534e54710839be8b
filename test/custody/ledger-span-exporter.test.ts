import { existsSync, readFileSync } from 'node:fs';
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { makeWorkflowExporter, type SerializableSpan } from '@temporalio/interceptors-opentelemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR, genAiSpanName } from '../../custody/attributes';
import { LedgerSpanExporter, LedgerSpanProcessor, UNASSIGNED_TASK } from '../../custody/ledger-span-exporter';
import { verifyLedger } from '../../custody/verify-ledger';
import { openTempLedger, type TempLedger } from './fixtures/ledger-fixture';
import { compactJws, sha256Hex } from './fixtures/tokens';

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

/** The context of `parent`, passed explicitly: this provider has no global context manager. */
function under(parent: Span) {
  return trace.setSpan(context.active(), parent);
}

/** Every byte the ledger has on disk (database and write-ahead log). */
function ledgerBytes(path: string): string {
  return [path, `${path}-wal`]
    .filter(existsSync)
    .map((file) => readFileSync(file).toString('latin1'))
    .join('');
}

describe('ledger span exporter', () => {
  it('records a task span tree with Warden attributes in order, checkpoints at task end, verifies, and never stores a token', () => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const { ledger } = temp;
    const exporter = new LedgerSpanExporter({
      ledger,
      isTaskEnd: (span) => span.parentSpanId === undefined && span.name.startsWith('invoke_agent'),
    });
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: new Resource({ 'service.name': 'warden-worker' }),
      spanProcessors: [new LedgerSpanProcessor(exporter), new SimpleSpanProcessor(memory)],
    });
    const tracer: Tracer = provider.getTracer('warden');
    const token = compactJws();

    const root = tracer.startSpan(genAiSpanName.invokeAgent('scribe'), {
      attributes: {
        [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.invokeAgent,
        [WARDEN_ATTR.taskId]: 'wf-1',
        [WARDEN_ATTR.user]: 'alice@example.com',
        [WARDEN_ATTR.intentSha256]: sha256Hex('Count the words'),
        [WARDEN_ATTR.agentId]: 'wf-1',
        [WARDEN_ATTR.agentChain]: ['wf-1'],
      },
    });
    const chat = tracer.startSpan(
      genAiSpanName.chat('scripted-scribe'),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.chat,
          [GEN_AI_ATTR.requestModel]: 'scripted-scribe',
          [WARDEN_ATTR.modelVersion]: '2026-11-25',
          [WARDEN_ATTR.promptSha256]: sha256Hex('prompt'),
        },
      },
      under(root),
    );
    chat.end();
    const tool = tracer.startSpan(
      genAiSpanName.executeTool('fs.read'),
      {
        attributes: {
          [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.executeTool,
          [GEN_AI_ATTR.toolName]: 'fs.read',
          [WARDEN_ATTR.toolArgsSha256]: sha256Hex('{"path":"notes.txt"}'),
          [WARDEN_ATTR.credentialJti]: 'cred-1',
          'warden.credential.token': token,
          'warden.tool.note': `called with Bearer ${token}`,
          [WARDEN_ATTR.policyDecision]: 'allow',
          [WARDEN_ATTR.policyRules]: ['grant:fs.read'],
          [WARDEN_ATTR.resourcesFiles]: ['notes.txt'],
          [WARDEN_ATTR.outcome]: 'ok',
        },
      },
      under(root),
    );
    tool.end();
    const sub = tracer.startSpan(genAiSpanName.invokeAgent('reviewer'), { attributes: { [WARDEN_ATTR.agentChain]: ['wf-1', 'wf-1/reviewer-3'] } }, under(root));
    const denied = tracer.startSpan(
      genAiSpanName.executeTool('fs.write'),
      { attributes: { [GEN_AI_ATTR.toolName]: 'fs.write', [WARDEN_ATTR.policyDecision]: 'deny', [WARDEN_ATTR.outcome]: 'denied' } },
      under(sub),
    );
    denied.setStatus({ code: SpanStatusCode.ERROR, message: 'ERR_TOOL_NOT_GRANTED' });
    denied.end();
    sub.end();
    expect(ledger.checkpoints()).toHaveLength(0);
    root.end();

    const records = ledger.records();
    expect(records.map((r) => (r.body as { name: string }).name)).toEqual([
      'chat scripted-scribe',
      'execute_tool fs.read',
      'execute_tool fs.write',
      'invoke_agent reviewer',
      'invoke_agent scribe',
    ]);
    // Spans without warden.task.id join their trace's task (learned when the root span started with it).
    expect(new Set(records.map((r) => r.taskId))).toEqual(new Set(['wf-1']));
    const byName = new Map(records.map((r) => [(r.body as { name: string }).name, r.body as { spanId: string; parentSpanId: string | null; traceId: string; attributes: Record<string, unknown> }]));
    expect(byName.get('execute_tool fs.write')?.parentSpanId).toBe(byName.get('invoke_agent reviewer')?.spanId);
    expect(byName.get('invoke_agent reviewer')?.parentSpanId).toBe(byName.get('invoke_agent scribe')?.spanId);
    expect(new Set(records.map((r) => (r.body as { traceId: string }).traceId)).size).toBe(1);
    expect(records[1]?.recordKey).toBe(`${byName.get('execute_tool fs.read')?.traceId}:${byName.get('execute_tool fs.read')?.spanId}`);
    expect(byName.get('execute_tool fs.read')?.attributes).toMatchObject({
      'warden.credential.jti': 'cred-1',
      'warden.tool.note': `called with Bearer jws-sha256:${sha256Hex(token)}`,
      'warden.policy.rules': ['grant:fs.read'],
    });
    expect(byName.get('execute_tool fs.read')?.attributes).not.toHaveProperty('warden.credential.token');

    // The task's end took a checkpoint covering every span of the task.
    expect(ledger.checkpoints()).toEqual([expect.objectContaining({ treeSize: 5, reason: 'task-end', taskId: 'wf-1' })]);
    expect(verifyLedger(ledger, { taskId: 'wf-1' })).toMatchObject({ ok: true, records: 5, taskCheckpointed: true });

    // Nothing of the token is on disk: not the token, not its payload, not its signature.
    const bytes = ledgerBytes(ledger.path);
    expect(bytes).toContain('cred-1');
    for (const part of [token, ...token.split('.').slice(1)]) expect(bytes).not.toContain(part);

    // Exporting the same spans again (a retry, a replay) records nothing new.
    const spans = records.length;
    const again: ExportResult[] = [];
    exporter.export(memory.getFinishedSpans(), (r) => again.push(r));
    expect(again[0]?.code).toBe(ExportResultCode.SUCCESS);
    expect(ledger.size()).toBe(spans);
    expect(ledger.checkpoints()).toHaveLength(1);
  });

  it('assigns workflow spans from the Temporal sink to the root task, and checkpoints when the root workflow run ends', () => {
    temp = openTempLedger({ checkpointEvery: 0 });
    const { ledger } = temp;
    const exporter = new LedgerSpanExporter({ ledger });
    const processor = new SimpleSpanProcessor(exporter);
    const sink = makeWorkflowExporter(processor, new Resource({ 'service.name': 'warden-worker' }));
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const span = (name: string, spanId: string, parentSpanId: string | undefined, attributes: Record<string, unknown> = {}): SerializableSpan => ({
      name,
      kind: SpanKind.INTERNAL,
      spanContext: { traceId, spanId, traceFlags: 1 },
      parentSpanId,
      startTime: [1767225600, 0],
      endTime: [1767225601, 0],
      status: { code: SpanStatusCode.OK },
      attributes: attributes as SerializableSpan['attributes'],
      links: [],
      events: [],
      duration: [1, 0],
      ended: true,
      droppedAttributesCount: 0,
      droppedLinksCount: 0,
      droppedEventsCount: 0,
      instrumentationLibrary: { name: '@temporalio/interceptor-workflow' },
    });
    const rootInfo = { workflowId: 'wf-root', runId: 'run-1', workflowType: 'agentTask', historyLength: 12, startTime: new Date(0), memo: { secret: 'x' }, unsafe: { now: () => 0 } };
    const childInfo = { ...rootInfo, workflowId: 'wf-root/reviewer-3', runId: 'run-2', root: { workflowId: 'wf-root', runId: 'run-1' }, parent: { workflowId: 'wf-root', runId: 'run-1', namespace: 'default' } };
    const callSink = (info: object, spans: SerializableSpan[]) => (sink.export.fn as (info: unknown, spans: SerializableSpan[]) => void)(info, spans);

    callSink(childInfo, [span('RunWorkflow:agentTask', '00f067aa0ba902b1', 'b7ad6b7169203331')]);
    callSink(rootInfo, [span('StartChildWorkflow:agentTask', 'b7ad6b7169203331', '00f067aa0ba902b0')]);
    expect(ledger.checkpoints()).toHaveLength(0);
    callSink(rootInfo, [span('RunWorkflow:agentTask', '00f067aa0ba902b0', undefined)]);

    const records = ledger.records();
    expect(records.map((r) => [r.taskId, r.workflowId])).toEqual([
      ['wf-root', 'wf-root/reviewer-3'],
      ['wf-root', 'wf-root'],
      ['wf-root', 'wf-root'],
    ]);
    // Workflow info objects the sink merges into attributes are left out; its scalars stay.
    const attributes = (records[0]?.body as { attributes: Record<string, unknown> }).attributes;
    expect(attributes).toMatchObject({ workflowId: 'wf-root/reviewer-3', workflowType: 'agentTask', historyLength: 12 });
    for (const key of ['memo', 'root', 'parent', 'unsafe', 'startTime']) expect(attributes).not.toHaveProperty(key);
    expect(ledger.checkpoints()).toEqual([expect.objectContaining({ treeSize: 3, reason: 'task-end', taskId: 'wf-root' })]);

    // An activity span of the same trace carries only the child's workflow id: the trace says whose task it is.
    const activity = {
      ...span('RunActivity:runTool', '1111111111111111', '2222222222222222', { temporalWorkflowId: 'wf-root/reviewer-3', temporalActivityId: '1' }),
    };
    const fresh = new LedgerSpanExporter({ ledger });
    expect(fresh.taskIdOf(asReadable(activity))).toBe('wf-root');
    const elsewhere = { ...activity, spanContext: { ...activity.spanContext, traceId: 'ffffffffffffffffffffffffffffffff' } };
    expect(fresh.taskIdOf(asReadable(elsewhere))).toBe('wf-root/reviewer-3');
    expect(fresh.taskIdOf(asReadable({ ...elsewhere, attributes: {} }))).toBe(UNASSIGNED_TASK);
  });

  it('leaves read-only Temporal queries out of the ledger', () => {
    temp = openTempLedger();
    const exporter = new LedgerSpanExporter({ ledger: temp.ledger });
    const tracer = new BasicTracerProvider({ spanProcessors: [new LedgerSpanProcessor(exporter)] }).getTracer('t');
    tracer.startSpan('QueryWorkflow:warden.taskState', { attributes: { temporalWorkflowId: 'wf-1' } }).end();
    tracer.startSpan('HandleQuery:warden.taskState').end();
    tracer.startSpan('SignalWorkflow:approve', { attributes: { temporalWorkflowId: 'wf-1' } }).end();
    expect(temp.ledger.records().map((r) => (r.body as { name: string }).name)).toEqual(['SignalWorkflow:approve']);
  });

  it('reports a failed append as a failed export', () => {
    temp = openTempLedger();
    const errors: unknown[] = [];
    const exporter = new LedgerSpanExporter({ ledger: temp.ledger, onError: (e) => errors.push(e) });
    const provider = new BasicTracerProvider({ spanProcessors: [] });
    const span = provider.getTracer('t').startSpan('s') as unknown as ReadableSpan & Span;
    span.end();
    temp.ledger.close();
    const results: ExportResult[] = [];
    exporter.export([span], (r) => results.push(r));
    expect(results[0]?.code).toBe(ExportResultCode.FAILED);
    expect(errors).toHaveLength(1);
  });
});

function asReadable(span: SerializableSpan): ReadableSpan {
  return {
    ...span,
    spanContext: () => span.spanContext,
    resource: new Resource({}),
  } as unknown as ReadableSpan;
}

describe('ledger span exporter: checkpoints handed on', () => {
  it('hands every checkpoint its signer, reading the key folder once per kid', async () => {
    temp = openTempLedger({ checkpointEvery: 2 });
    const { ledger } = temp;
    let folderReads = 0;
    // The real ledger, with its key-folder reads counted.
    const counted = Object.create(ledger, {
      publicKeys: { value: () => ((folderReads += 1), ledger.publicKeys()) },
    }) as typeof ledger;
    const heads: { treeSize: number; signer: string | undefined }[] = [];
    const exporter = new LedgerSpanExporter({
      ledger: counted,
      commit: 'group',
      isTaskEnd: (span) => span.name.startsWith('invoke_agent'),
      onCheckpoint: (checkpoint, signer) => void heads.push({ treeSize: checkpoint.treeSize, signer: signer?.kid }),
    });
    const tracer = new BasicTracerProvider({ spanProcessors: [new LedgerSpanProcessor(exporter)] }).getTracer('warden');
    for (let task = 0; task < 3; task += 1) {
      const root = tracer.startSpan(genAiSpanName.invokeAgent('scribe'), { attributes: { [WARDEN_ATTR.taskId]: `wf-${task}` } });
      for (let step = 0; step < 3; step += 1) tracer.startSpan(genAiSpanName.chat('m'), {}, under(root)).end();
      root.end();
      await exporter.flush();
    }
    // Interval heads at 2, 4, ... 12 and a task-end head after each task (4, 8 and 12 are both).
    expect(heads.map((h) => h.treeSize)).toEqual([2, 4, 4, 6, 8, 8, 10, 12, 12]);
    expect(new Set(heads.map((h) => h.signer))).toEqual(new Set([ledger.kid]));
    expect(ledger.publicKeys().map((k) => k.kid)).toContain(ledger.kid);
    expect(folderReads).toBe(1);
    expect(verifyLedger(ledger)).toMatchObject({ ok: true, totalRecords: 12 });
  });
});
