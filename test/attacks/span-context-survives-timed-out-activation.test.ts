/**
 * Attack (issue 17, h/wcpu 2cec4ca, one span-context AsyncLocalStorage per workflow thread): a run
 * whose activation the isolate stops (the SDK's `isolateExecutionTimeout`, Warden's 30 s,
 * "Script execution timed out") while it is synchronously inside a span's `with` leaves its span
 * context as the active context of the workflow thread, for every later activation of every run.
 *
 * Why: Node 20's AsyncLocalStorage `run` writes the store on the current async resource and puts
 * the previous value back in a `finally`; V8's termination of a timed-out script runs no `finally`.
 * The workflow thread calls into the sandbox synchronously from its `parentPort` 'message' handler
 * (`@temporalio/worker/lib/workflow/workflow-worker-thread.js`: `handleRequest` ->
 * `workflow.activate` -> `workflowModule.activate`, no await before), so the resource is the port's,
 * the same for every message; the top of an activation (a start's `execute`, a signal's or an
 * update's handler: the SDK's interceptors `instrument` them with `startActiveSpan`, i.e. `with`)
 * runs on it. With one storage per run (main) the value stayed under the timed-out run's own
 * storage, which no other run reads. With one storage for the thread every later run reads it:
 * `context.active()` at the top of its activations is the other task's span, so a span it starts
 * there without a trace header of its own (`instrument` falls back to the active context; the
 * header's extraction starts from it too) and everything under it, the activity spans and the
 * custody records that take their parent ids from them, land in the other task's trace.
 *
 * Held on the SDK's reusable V8 context built from the real bundle with Warden's workflow
 * interceptors, each run created by the SDK (`createWorkflow`: its own globals, module cache and
 * activator); every activation is made from a MessagePort 'message' handler as the workflow thread
 * makes it, through the SDK's call into the run's scope, then the run's code under the isolate
 * timeout the SDK gives `runInContext`. Each run handles a signal sent without a trace header (a
 * signal from the Temporal CLI or UI, or from a client without Warden's interceptors) with the
 * real interceptors, and its span is read as exported to the custody ledger (the run's sink calls).
 * Fails on h/wcpu (runs B and C's signal spans are children of A's span, in A's trace); passes on main.
 */
import { MessageChannel } from 'node:worker_threads';
import { runInContext, type Context } from 'node:vm';
import { TypedSearchAttributes } from '@temporalio/common';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
// The SDK's reusable-context creator (what every worker runs workflows in), used directly: no public entry point.
import { ReusableVMWorkflowCreator, type ReusableVMWorkflow } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_TASK_WORKFLOW } from '../../workflows/definitions';
import { workflowBundle } from '../../worker/workflow-bundle';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';

interface ExportedSpan {
  name: string;
  traceId: string;
  parentSpanId?: string;
}

describe('a timed-out activation and the spans of the other runs on its thread', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;
  const runs = new Map<string, ReusableVMWorkflow>();
  const channel = new MessageChannel();
  let nextCall = 0;
  const pending = new Map<number, { body: () => unknown; settle: (outcome: { value?: unknown; error?: string }) => void }>();

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle(undefined, { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    context = (creator as unknown as { context: Context }).context;
    // The workflow thread's loop: each request handled synchronously in the port's 'message' event.
    channel.port1.on('message', (id: number) => {
      const call = pending.get(id)!;
      pending.delete(id);
      try {
        call.settle({ value: call.body() });
      } catch (error) {
        call.settle({ error: (error as Error).message });
      }
    });
    for (const [index, run] of ['a', 'b', 'c'].entries()) {
      const startTime = new Date(1_700_000_000_000);
      runs.set(
        run,
        (await creator.createWorkflow({
          info: {
            workflowId: `task-${run}`,
            runId: `run-${run}`,
            workflowType: AGENT_TASK_WORKFLOW,
            searchAttributes: {},
            typedSearchAttributes: new TypedSearchAttributes(),
            taskQueue: 'attack',
            namespace: 'default',
            firstExecutionRunId: `run-${run}`,
            originalExecutionRunId: `run-${run}`,
            startTime,
            runStartTime: startTime,
            taskTimeoutMs: 10_000,
            attempt: 1,
            historyLength: 3,
            historySize: 0,
            continueAsNewSuggested: false,
            targetWorkerDeploymentVersionChanged: false,
            suggestedContinueAsNewReasons: undefined,
            currentBuildId: '',
            unsafe: { now: () => 0, isReplaying: false, isReplayingHistoryEvents: false, random: Math.random },
            priority: {},
          },
          randomnessSeed: [index + 1, 2, 3, 4, 5, 6, 7, 8],
          now: startTime.getTime(),
          showStackTraceSources: false,
        } as never)) as ReusableVMWorkflow,
      );
    }
  }, 300_000);

  afterAll(async () => {
    channel.port1.close();
    for (const run of runs.values()) await run.dispose();
    await creator?.destroy();
  });

  /**
   * One activation of `run`, as the workflow thread makes it: from a port message, the SDK's call
   * into the run's scope (its globals and activator), then `body` (a function of the run's
   * activator and its first inbound interceptor, Warden's) under the isolate timeout; the run's
   * microtasks are drained before it returns (`afterEvaluate`).
   */
  function activate(run: string, body: string, timeoutMs = 30_000): Promise<{ value?: unknown; error?: string }> {
    const workflow = runs.get(run)!;
    const source = `(() => {
      const activator = globalThis.__TEMPORAL_ACTIVATOR__;
      return (${body})(activator, activator.interceptors.inbound[0]);
    })()`;
    return new Promise((settle) => {
      const id = nextCall++;
      pending.set(id, {
        body: () => {
          (workflow as unknown as { workflowModule: { tryUnblockConditions(): unknown } }).workflowModule.tryUnblockConditions();
          return runInContext(source, context, { timeout: timeoutMs });
        },
        settle,
      });
      channel.port2.postMessage(id);
    });
  }

  /** `run` handles a signal sent without a trace header: its span, as exported to the custody ledger. */
  async function signalSpan(run: string): Promise<ExportedSpan> {
    await activate(run, `(activator, inbound) => { activator.sinkCalls = []; inbound.handleSignal({ signalName: 'probe', args: [], headers: {} }, async () => undefined); }`);
    const exported = (
      await activate(
        run,
        `(activator) => activator.sinkCalls.filter((call) => call.ifaceName === 'exporter').flatMap((call) => call.args[0]).map((span) => ({ name: span.name, traceId: span.spanContext.traceId, parentSpanId: span.parentSpanId ?? span.parentSpanContext?.spanId }))`,
      )
    ).value as ExportedSpan[];
    expect(exported.map((span) => span.name)).toEqual(['HandleSignal:probe']);
    return exported[0]!;
  }

  it('runs B and C\'s spans after run A timed out inside A\'s span are roots of their own traces, not in A\'s', async () => {
    const before = await signalSpan('b');
    expect(before.parentSpanId).toBeUndefined();

    // Run A: the synchronous part of a signal handler (a start's `execute`, an update's handler
    // alike: the SDK's interceptors run them inside the span's `with`) outlives the isolate timeout.
    const timedOut = await activate(
      'a',
      `(activator, inbound) => inbound.handleSignal({ signalName: 'slow', args: [], headers: {} }, () => {
        globalThis.__traceOfA = __webpack_module_cache__['./node_modules/@opentelemetry/api/build/esm/index.js'].exports.trace.getActiveSpan().spanContext().traceId;
        for (;;) {}
      })`,
      200,
    );
    expect(timedOut.error).toMatch(/timed out/);
    const traceOfA = (await activate('a', `() => globalThis.__traceOfA`)).value as string;
    expect(traceOfA).toMatch(/^[0-9a-f]{32}$/);

    // Other tasks' runs on the thread, their later activations.
    for (const run of ['b', 'c']) {
      const span = await signalSpan(run);
      expect({ run, inTraceOfA: span.traceId === traceOfA, parentSpanId: span.parentSpanId }).toEqual({ run, inTraceOfA: false, parentSpanId: undefined });
    }
  });
});
