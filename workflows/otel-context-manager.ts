/**
 * Not a workflow: what `@temporalio/interceptors-opentelemetry/lib/workflow/context-manager` resolves
 * to inside the workflow bundle (worker/workflow-bundle.ts `OTEL_CONTEXT_MANAGER_ALIAS`). The same
 * context manager as the SDK's (@temporalio/interceptors-opentelemetry 1.24), with one difference:
 * the active span context is kept in one AsyncLocalStorage for every run of the workflow thread
 * (shared-modules.ts `threadSpanContextStorage`), not in one per run.
 *
 * Why: every run evaluates the interceptor module afresh (the SDK's reusable V8 context gives each
 * run a module cache of its own), so each run made its own AsyncLocalStorage and enabled it with
 * its first span. Node (20) runs every enabled AsyncLocalStorage's propagation on every promise and
 * timer created on the thread, by any run: at 50 concurrent tasks each promise a workflow made paid
 * for 50 storages (issue 17: the workflow thread's CPU per call rose with the number of tasks).
 *
 * Why sharing it is safe: a storage keeps its value on the async resource the code runs in, and a
 * value reaches only resources created from one holding it; `with` sets it for the synchronous call
 * and puts the previous value back (nothing uses `enterWith`). Runs never run inside each other's
 * resources: each activation runs from its own message and drains its own microtasks before the
 * next. The SDK's own cancellation scopes already keep theirs in one storage for the whole thread
 * (@temporalio/workflow's module-level `storage`, evaluated before any run). What the context
 * decides is which span is a span's parent (custody records' parent ids), never a command: replay
 * is unaffected. The one way a value outlives its `with` (an activation stopped by the isolate
 * timeout) is why each value names the run that set it (`HeldContext`).
 *
 * `disable` (the SDK's OpenTelemetry internals interceptor calls it when a run is disposed) leaves
 * the shared storage enabled: other runs still use it. It was created outside any run, so the SDK
 * disables it only with the V8 context itself. Outside a workflow bundle there is no shared storage
 * and each manager makes its own, as the SDK's does.
 *
 * Deterministic code only, like all workflow code.
 */
import * as otel from '@opentelemetry/api';
import { threadSpanContextStorage, type SandboxAsyncLocalStorage } from './shared-modules';

/**
 * A context with the manager (so the run: each run evaluates this module and makes one manager)
 * that set it. Why: the storage's value lives on the async resource the code runs in, and
 * `AsyncLocalStorage.run` puts the previous value back in a `finally`, which a script stopped by
 * the isolate timeout never runs: the workflow thread enters every activation from the same
 * message port resource, so a run stopped inside a span left that span active for every later
 * activation of every run on the thread (test/attacks/span-context-survives-timed-out-activation).
 * Tagged, another run's left-over value is not its context; the run itself reads its own, as it did
 * with a storage of its own.
 */
interface HeldContext {
  owner: ContextManager;
  context: otel.Context;
}

export class ContextManager implements otel.ContextManager {
  protected readonly shared: boolean;
  protected storage: SandboxAsyncLocalStorage<HeldContext>;

  constructor() {
    const storage = threadSpanContextStorage<HeldContext>();
    this.shared = storage !== undefined;
    this.storage = storage ?? new (globalThis as unknown as { AsyncLocalStorage: new () => SandboxAsyncLocalStorage<HeldContext> }).AsyncLocalStorage();
  }

  /** This run's context: a value another run's manager set (or left behind, see below) reads as none. */
  active(): otel.Context {
    const held = this.storage.getStore();
    return held !== undefined && held.owner === this ? held.context : otel.ROOT_CONTEXT;
  }

  bind<T>(context: otel.Context, target: T): T {
    if (typeof target !== 'function') {
      throw new TypeError(`Only function binding is supported, got ${typeof target}`);
    }
    const fn = target as unknown as (...args: unknown[]) => unknown;
    const contextWrapper = (...args: unknown[]) => this.with(context, () => fn.apply(this, args));
    Object.defineProperty(contextWrapper, 'length', { enumerable: false, configurable: true, writable: false, value: fn.length });
    return contextWrapper as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    if (!this.shared) this.storage.disable();
    return this;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: otel.Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const cb = thisArg == null ? fn : fn.bind(thisArg);
    return this.storage.run({ owner: this, context }, cb as never, ...args) as ReturnType<F>;
  }
}
