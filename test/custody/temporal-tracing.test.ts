/**
 * The telemetry plumbing on the real Temporal server: one trace per task, from the client's
 * StartWorkflow through the workflow run, its activities (with the spans they make) and a child
 * workflow, all recorded in the custody ledger under the root workflow id, with a checkpoint
 * when the task ends. The worker uses a pre-built bundle, as Warden's does.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodyLedger } from '../../custody/ledger';
import { verifyLedger } from '../../custody/verify-ledger';
import { setupTelemetry, type Telemetry } from '../../telemetry/setup-telemetry';
import { telemetryClientInterceptors, telemetryWorkerOptions, WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { installQuietRuntime } from '../../worker/create-warden-worker';
import { testTemporalConfig } from '../support/temporal';
import * as activities from './fixtures/traced-activities';
import { tempStateDir } from './fixtures/ledger-fixture';

interface SpanBody {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  attributes: Record<string, unknown>;
}

const noop = () => undefined;
const silentLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

let stateDir: string;
let telemetry: Telemetry;

beforeAll(() => {
  installQuietRuntime();
  stateDir = tempStateDir();
  telemetry = setupTelemetry({ stateDir, serviceName: 'warden-worker', env: {}, checkpointEvery: 1000 });
});

afterAll(async () => {
  await telemetry?.shutdown();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('tracing Temporal tasks into the custody ledger', () => {
  it('gives one trace per task with activities and sub-agents as descendants, under the root workflow id', async () => {
    expect(telemetry.registered).toBe(true);
    const config = testTemporalConfig();
    const { connection } = await connectClient(config);
    const client = new Client({ connection, namespace: config.namespace, interceptors: telemetryClientInterceptors(telemetry) });
    const workerConnection = await connectWorkerConnection(config);
    const taskQueue = `custody-tracing-${randomUUID()}`;
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: join(__dirname, 'fixtures', 'traced-workflows.ts'),
      workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES],
      logger: silentLogger,
    });
    const traced = telemetryWorkerOptions(telemetry);
    const worker = await Worker.create({ connection: workerConnection, namespace: config.namespace, taskQueue, workflowBundle, activities, ...traced });
    const workflowId = `traced-${randomUUID()}`;
    try {
      const result = await worker.runUntil(client.workflow.execute('tracedTask', { taskQueue, workflowId, args: ['alice'] }));
      expect(result).toEqual(['hello alice', 'hello alice (reviewer)']);
    } finally {
      await connection.close();
      await workerConnection.close();
    }
    await telemetry.forceFlush();

    const records = await telemetry.ledger.records();
    const spans = records.map((r) => r.body as unknown as SpanBody);
    const names = spans.map((s) => s.name);
    for (const name of [
      'StartWorkflow:tracedTask',
      'RunWorkflow:tracedTask',
      'StartActivity:greet',
      'RunActivity:greet',
      'execute_tool greet',
      'StartChildWorkflow:tracedChild',
      'RunWorkflow:tracedChild',
    ]) {
      expect(names, name).toContain(name);
    }
    // One trace, and every record filed under the task (the root workflow id).
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(new Set(records.map((r) => r.taskId))).toEqual(new Set([workflowId]));
    const workflowOf = (name: string) => records.filter((r) => (r.body as unknown as SpanBody).name === name).map((r) => r.workflowId);
    expect(workflowOf('RunWorkflow:tracedChild')).toEqual([`${workflowId}/reviewer`]);
    // The activity's own spans inherit the workflow from RunActivity, which ends after them.
    expect(workflowOf('execute_tool greet')).toEqual([workflowId, `${workflowId}/reviewer`]);

    // Parentage: client start -> workflow run -> activity start -> activity run -> the activity's own span.
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentName = (span: SpanBody | undefined) => (span?.parentSpanId ? byId.get(span.parentSpanId)?.name : undefined);
    const start = spans.find((s) => s.name === 'StartWorkflow:tracedTask');
    expect(start?.parentSpanId).toBeNull();
    expect(parentName(spans.find((s) => s.name === 'RunWorkflow:tracedTask'))).toBe('StartWorkflow:tracedTask');
    for (const run of spans.filter((s) => s.name === 'RunActivity:greet')) expect(parentName(run)).toBe('StartActivity:greet');
    for (const own of spans.filter((s) => s.name === 'execute_tool greet')) expect(parentName(own)).toBe('RunActivity:greet');
    expect(parentName(spans.find((s) => s.name === 'RunWorkflow:tracedChild'))).toBe('StartChildWorkflow:tracedChild');
    expect(spans.filter((s) => s.name === 'RunActivity:greet')).toHaveLength(2);

    // The root run's end took a task-end checkpoint; the ledger verifies.
    const checkpoints = await telemetry.ledger.checkpoints();
    expect(checkpoints).toContainEqual(expect.objectContaining({ reason: 'task-end', taskId: workflowId }));
    const runRoot = records.find((r) => (r.body as unknown as SpanBody).name === 'RunWorkflow:tracedTask');
    const taskEnd = checkpoints.find((c) => c.taskId === workflowId);
    expect((taskEnd?.treeSize ?? 0) > (runRoot?.seq ?? Infinity)).toBe(true);
    expect(verifyLedger(telemetry.ledger as CustodyLedger, { taskId: workflowId })).toMatchObject({ ok: true, records: records.length });
  }, 180_000);
});
