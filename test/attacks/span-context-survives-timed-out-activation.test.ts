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
 * Held on the SDK's reusable V8 context built from the real bundle, as
 * test/workflows/otel-context-storage.test.ts does, each run with its own module cache, every call
 * made from a MessagePort 'message' handler as the workflow thread makes it, the timed-out one with
 * the isolate timeout the SDK gives `runInContext`. Fails on h/wcpu (run B sees A's trace); passes
 * on main.
 */
import { MessageChannel } from 'node:worker_threads';
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowBundle } from '../../worker/workflow-bundle';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';

const OTEL_WORKFLOW_INDEX = './node_modules/@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
const OTEL_API = './node_modules/@opentelemetry/api/build/esm/index.js';
const TRACE_A = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

describe('a timed-out activation and the span context of the other runs on its thread', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;
  let managerModule: string;
  const channel = new MessageChannel();
  let nextCall = 0;
  const pending = new Map<number, { body: () => unknown; settle: (outcome: { value?: unknown; error?: string }) => void }>();

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle(undefined, { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
    const index = bundle.code.indexOf(`/***/ "${OTEL_WORKFLOW_INDEX}"`);
    expect(index).toBeGreaterThan(0);
    const required = /__webpack_require__\(\/\*! \.\/context-manager \*\/ "([^"]+)"\)/.exec(bundle.code.slice(index));
    expect(required).not.toBeNull();
    managerModule = required![1] as string;
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
  }, 300_000);

  afterAll(async () => {
    channel.port1.close();
    await creator?.destroy();
  });

  /** One activation of `run`: `body` (a function of the run's `holder`) evaluated with the run's module cache, from a port message. */
  function activate(run: string, body: string, timeoutMs = 30_000): Promise<{ value?: unknown; error?: string }> {
    const source = `(() => {
      globalThis.__holder ??= {};
      const holder = (globalThis.__holder[${JSON.stringify(run)}] ??= { moduleCache: new Map() });
      globalThis.__TEMPORAL_ACTIVATOR__ = { moduleCache: holder.moduleCache, workflowSandboxDestructors: [], info: { runId: ${JSON.stringify(run)} }, promiseStackStore: { childToParent: new Map(), promiseToStack: new Map() } };
      try {
        if (!holder.loaded) {
          __TEMPORAL__.importWorkflows();
          __TEMPORAL__.importInterceptors();
          holder.otel = __webpack_module_cache__[${JSON.stringify(OTEL_API)}].exports;
          holder.manager = new (__webpack_module_cache__[${JSON.stringify(managerModule)}].exports.ContextManager)();
          holder.loaded = true;
        }
        return (${body})(holder);
      } finally {
        delete globalThis.__TEMPORAL_ACTIVATOR__;
      }
    })()`;
    return new Promise((settle) => {
      const id = nextCall++;
      pending.set(id, { body: () => runInContext(source, context, { timeout: timeoutMs }), settle });
      channel.port2.postMessage(id);
    });
  }

  /** The trace id a span started at the top of an activation of `run` would take as its parent's (none: a root span). */
  const parentTraceAtTop = (run: string) => activate(run, `(holder) => holder.otel.trace.getSpanContext(holder.manager.active())?.traceId ?? null`);

  it('run B\'s activations after run A timed out inside A\'s span do not see A\'s span as active', async () => {
    expect(await parentTraceAtTop('b')).toEqual({ value: null });

    // Run A: a span's synchronous part (a start's `execute`, a signal or update handler) that outlives the isolate timeout.
    const timedOut = await activate(
      'a',
      `(holder) => {
        const spanOfA = holder.otel.trace.setSpanContext(holder.otel.ROOT_CONTEXT, { traceId: ${JSON.stringify(TRACE_A)}, spanId: 'aaaaaaaaaaaaaaaa', traceFlags: 1 });
        holder.manager.with(spanOfA, () => { for (;;) {} });
      }`,
      200,
    );
    expect(timedOut.error).toMatch(/timed out/);

    // Other runs on the thread, later activations: each would parent its top-level spans in A's trace.
    expect(await parentTraceAtTop('b')).toEqual({ value: null });
    expect(await parentTraceAtTop('c')).toEqual({ value: null });
  });
});
