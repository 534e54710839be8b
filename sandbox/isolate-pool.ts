/**
 * Warm isolates for the sandbox host: each tool call leases an isolate that already holds a fresh,
 * never-used context with the runtime prelude run in it, and gives it back when the call ends.
 *
 * Invariants (what makes reuse safe; test/sandbox/isolate-reuse.test.ts tries to break each):
 * - **A context serves one call.** A lease's context was created for it and is released when the
 *   call ends; the next call on the same isolate gets a new context, so globals, prototypes of
 *   built-ins and closures of one call are unreachable from the next (V8 contexts share no JS
 *   objects; the host hands each context only its own References and Callbacks).
 * - **Nothing of a finished call runs later.** The prelude removes the entry points that schedule
 *   code as platform tasks (FinalizationRegistry, Atomics.waitAsync, async WebAssembly), and an
 *   isolate is only handed out again after a new context could be created in it within
 *   `fenceTimeoutMs`: that task runs after the isolate's microtask queue has drained, so a call
 *   that left promise chains spinning never gets its isolate back and the isolate is disposed.
 * - **A troubled isolate is never reused.** An isolate disposed by a time-out or its memory
 *   limit, one whose heap is more than `retireHeapFraction` full after a call, and one that has
 *   served `maxCallsPerIsolate` calls is disposed; the next call gets a new one.
 * - **One call per isolate at a time.** A CPU-bound call cannot hold up another, and disposing
 *   an isolate on a time-out ends only the call that caused it.
 * The runtime prelude is compiled once per isolate (`ivm.Script`), never per call.
 */
import ivm from 'isolated-vm';
import { PRELUDE_SOURCE } from './isolate-prelude';
import { clearLongTimeout, setLongTimeout, type LongTimeout } from '../long-timer';

export interface IsolatePoolOptions {
  /** Idle isolates kept per memory limit. Default 4. */
  maxIdlePerLimit?: number;
  /** Idle isolates kept in all (tasks choose their memory limits, so limits can be many). Default 16. */
  maxIdle?: number;
  /** Calls one isolate serves before it is disposed. Default 500. */
  maxCallsPerIsolate?: number;
  /** Share of the memory limit (heap + external memory) in use after a call above which the isolate is disposed. Default 0.5. */
  retireHeapFraction?: number;
  /** Time a finished call's isolate has to accept a new context before it is presumed busy and disposed, in ms; 0 trusts no isolate again (one call each). Default 1000. */
  fenceTimeoutMs?: number;
  /** Idle isolates unused for this long are disposed, in ms. Default 60 000. */
  idleTimeoutMs?: number;
  /**
   * How long a call with no idle isolate waits for one that is being made ready after its last
   * call, before it creates a new one (which costs more: a new isolate needs a new context too), in ms. Default 10.
   */
  recycleWaitMs?: number;
  /**
   * Keep one isolate more than the calls in flight need, made ready in the background, so calls
   * that follow each other closely never wait for the isolate they just used. Default true.
   */
  keepSpare?: boolean;
  /**
   * Called when V8 loses control of an isolate (isolated-vm's advice: end the process), with the
   * `holder` the isolate was leased to at the time (undefined when idle or leased without one).
   */
  onCatastrophicError?: (message: string, holder: string | undefined) => void;
}

/** Why an isolate was disposed. */
export type RetireReason = 'troubled' | 'heap' | 'calls' | 'fence' | 'idle' | 'surplus' | 'closed';

export interface IsolatePoolStats {
  /** Isolates created. */
  created: number;
  /** Calls that got an isolate that had served an earlier call. */
  reused: number;
  /** Isolates disposed, by reason. */
  retired: Record<RetireReason, number>;
  /** Isolates waiting for a call. */
  idle: number;
  /** Calls holding an isolate. */
  leased: number;
}

/** The References a call uses in its context. */
interface PreludeHandles {
  context: ivm.Context;
  /** The prelude's result object; released with the context. */
  exports: ivm.Reference<Record<string, unknown>>;
  run: ivm.Reference<(...args: unknown[]) => Promise<string>>;
  settle: ivm.Reference<(ticket: number, outcome: unknown) => void>;
}

interface PooledIsolate {
  readonly isolate: ivm.Isolate;
  readonly memoryMb: number;
  readonly prelude: ivm.Script;
  calls: number;
  idleTimer?: LongTimeout;
  /** Whom the isolate is leased to now (`lease`'s holder), for `onCatastrophicError`. */
  holder?: string;
}

/** One call's hold on an isolate and its fresh context. Give it back with `IsolatePool.giveBack`. */
export interface IsolateLease {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly run: PreludeHandles['run'];
  readonly settle: PreludeHandles['settle'];
  /** @internal */
  readonly pooled: PooledIsolate;
  /** @internal */
  readonly handles: PreludeHandles;
}

interface IdleIsolate {
  pooled: PooledIsolate;
  handles: PreludeHandles;
}

const DEFAULTS = {
  maxIdlePerLimit: 4,
  maxIdle: 16,
  maxCallsPerIsolate: 500,
  retireHeapFraction: 0.5,
  fenceTimeoutMs: 1000,
  idleTimeoutMs: 60_000,
  recycleWaitMs: 10,
  keepSpare: true,
};

const MB = 1024 * 1024;

export class IsolatePool {
  readonly #options: typeof DEFAULTS;
  readonly #onCatastrophicError: ((message: string, holder: string | undefined) => void) | undefined;
  readonly #idle = new Map<number, IdleIsolate[]>();
  /** Every isolate not yet disposed, idle or leased. */
  readonly #live = new Set<PooledIsolate>();
  readonly #pendingReturns = new Set<Promise<void>>();
  /** Isolates being made ready after a call, per memory limit. */
  readonly #recycling = new Map<number, number>();
  /** Calls waiting for an isolate being made ready, per memory limit (first come, first served). */
  readonly #waiters = new Map<number, ((idle: IdleIsolate) => void)[]>();
  #leased = 0;
  #closed = false;
  readonly #stats = { created: 0, reused: 0, retired: { troubled: 0, heap: 0, calls: 0, fence: 0, idle: 0, surplus: 0, closed: 0 } };

  constructor(options: IsolatePoolOptions = {}) {
    this.#options = {
      maxIdlePerLimit: options.maxIdlePerLimit ?? DEFAULTS.maxIdlePerLimit,
      maxIdle: options.maxIdle ?? DEFAULTS.maxIdle,
      maxCallsPerIsolate: options.maxCallsPerIsolate ?? DEFAULTS.maxCallsPerIsolate,
      retireHeapFraction: options.retireHeapFraction ?? DEFAULTS.retireHeapFraction,
      fenceTimeoutMs: options.fenceTimeoutMs ?? DEFAULTS.fenceTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      recycleWaitMs: options.recycleWaitMs ?? DEFAULTS.recycleWaitMs,
      keepSpare: options.keepSpare ?? DEFAULTS.keepSpare,
    };
    this.#onCatastrophicError = options.onCatastrophicError;
  }

  get stats(): IsolatePoolStats {
    let idle = 0;
    for (const list of this.#idle.values()) idle += list.length;
    return { created: this.#stats.created, reused: this.#stats.reused, retired: { ...this.#stats.retired }, idle, leased: this.#leased };
  }

  /**
   * An isolate with a `memoryMb` heap limit and a new context in which the prelude has run:
   * an idle one when there is one, otherwise a new one. `holder` (a call id) is what
   * `onCatastrophicError` is told while the lease lasts. Throws what isolated-vm throws when an
   * isolate cannot be created.
   */
  async lease(memoryMb: number, holder?: string): Promise<IsolateLease> {
    const lease = await this.#lease(memoryMb);
    lease.pooled.holder = holder;
    return lease;
  }

  async #lease(memoryMb: number): Promise<IsolateLease> {
    if (this.#closed) throw new Error('the isolate pool is closed');
    const idle = this.#idle.get(memoryMb)?.pop();
    if (idle !== undefined) {
      clearLongTimeout(idle.pooled.idleTimer);
      if (!idle.pooled.isolate.isDisposed) {
        this.#stats.reused += 1;
        this.#keepSpare(memoryMb);
        return this.#leaseOf(idle.pooled, idle.handles);
      }
      this.#retire(idle.pooled, 'troubled');
    }
    const recycled = await this.#awaitRecycled(memoryMb);
    if (recycled !== undefined) {
      this.#stats.reused += 1;
      return this.#leaseOf(recycled.pooled, recycled.handles);
    }
    const pooled = this.#createIsolate(memoryMb);
    this.#keepSpare(memoryMb);
    try {
      return this.#leaseOf(pooled, await prepareContext(pooled));
    } catch (error) {
      this.#retire(pooled, 'troubled');
      throw error;
    }
  }

  /**
   * Ends a call's hold: releases its context and, unless the call left the isolate `troubled`
   * (timed out, out of memory, disposed), prepares the isolate's next context and puts it back
   * when that succeeds in time. Returns at once; `drain` waits for the work.
   */
  giveBack(lease: IsolateLease, troubled: boolean): void {
    this.#leased -= 1;
    lease.pooled.holder = undefined;
    releaseHandles(lease.handles);
    const { pooled } = lease;
    if (troubled || pooled.isolate.isDisposed || this.#closed) {
      this.#retire(pooled, this.#closed ? 'closed' : 'troubled');
      return;
    }
    if (pooled.calls >= this.#options.maxCallsPerIsolate) {
      this.#retire(pooled, 'calls');
      return;
    }
    this.#recycling.set(pooled.memoryMb, (this.#recycling.get(pooled.memoryMb) ?? 0) + 1);
    const work = afterThisTurn()
      .then(() => this.#recycle(pooled))
      .finally(() => {
        this.#recycling.set(pooled.memoryMb, (this.#recycling.get(pooled.memoryMb) ?? 1) - 1);
        this.#pendingReturns.delete(work);
      });
    this.#pendingReturns.add(work);
  }

  /**
   * With the last idle isolate of a limit leased and none being made ready, starts one more in
   * the background: calls that follow each other closely then alternate between two isolates
   * instead of waiting for the one they just used.
   */
  #keepSpare(memoryMb: number): void {
    if (!this.#options.keepSpare || this.#closed) return;
    if ((this.#idle.get(memoryMb)?.length ?? 0) > 0 || (this.#recycling.get(memoryMb) ?? 0) > 0) return;
    this.#recycling.set(memoryMb, (this.#recycling.get(memoryMb) ?? 0) + 1);
    const work = (async () => {
      await afterThisTurn();
      let pooled: PooledIsolate;
      try {
        pooled = this.#createIsolate(memoryMb);
      } catch {
        return; // the next call that needs one creates it and reports the failure
      }
      let handles: PreludeHandles;
      try {
        handles = await prepareContext(pooled);
      } catch {
        this.#retire(pooled, 'troubled');
        return;
      }
      this.#offer(pooled, handles);
    })().finally(() => {
      this.#recycling.set(memoryMb, (this.#recycling.get(memoryMb) ?? 1) - 1);
      this.#pendingReturns.delete(work);
    });
    this.#pendingReturns.add(work);
  }

  /** An isolate that finishes being made ready within `recycleWaitMs`, if one is on its way. */
  #awaitRecycled(memoryMb: number): Promise<IdleIsolate | undefined> {
    if ((this.#recycling.get(memoryMb) ?? 0) === 0 || this.#options.recycleWaitMs <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(memoryMb) ?? [];
      this.#waiters.set(memoryMb, waiters);
      const timer = setLongTimeout(() => {
        const at = waiters.indexOf(take);
        if (at >= 0) waiters.splice(at, 1);
        resolve(undefined);
      }, this.#options.recycleWaitMs);
      const take = (idle: IdleIsolate) => {
        timer.clear();
        resolve(idle);
      };
      waiters.push(take);
    });
  }

  /** Waits until every isolate given back is idle or disposed. */
  async drain(): Promise<void> {
    while (this.#pendingReturns.size > 0) await Promise.all([...this.#pendingReturns]);
  }

  /**
   * Disposes every isolate, idle or leased (a call still running ends as if its isolate had
   * crashed). Isolates left alive when the process exits can abort it, so hosts call this first.
   */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const idle of list.splice(0)) this.#retire(idle.pooled, 'closed', idle.handles);
    for (const pooled of [...this.#live]) this.#retire(pooled, 'closed');
  }

  #leaseOf(pooled: PooledIsolate, handles: PreludeHandles): IsolateLease {
    pooled.calls += 1;
    this.#leased += 1;
    return { isolate: pooled.isolate, context: handles.context, run: handles.run, settle: handles.settle, pooled, handles };
  }

  #createIsolate(memoryMb: number): PooledIsolate {
    const onCatastrophicError = this.#onCatastrophicError;
    // The pooled record exists only once the isolate does: the callback finds it through this box.
    const box: { pooled?: PooledIsolate } = {};
    const isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      ...(onCatastrophicError === undefined ? {} : { onCatastrophicError: (message: string) => onCatastrophicError(message, box.pooled?.holder) }),
    });
    try {
      const prelude = isolate.compileScriptSync(PRELUDE_SOURCE, { filename: 'warden:prelude' });
      this.#stats.created += 1;
      const pooled: PooledIsolate = { isolate, memoryMb, prelude, calls: 0 };
      box.pooled = pooled;
      this.#live.add(pooled);
      return pooled;
    } catch (error) {
      isolate.dispose();
      throw error;
    }
  }

  async #recycle(pooled: PooledIsolate): Promise<void> {
    // The new context is created by a task on the isolate's thread, which runs only once the
    // finished call's microtasks have drained: if that does not happen in time, the call left
    // work behind and the isolate is not trusted again.
    let fenceTimer: LongTimeout | undefined;
    // A fence of 0 ms waits for nothing: no isolate is trusted again (each serves one call).
    const fence =
      this.#options.fenceTimeoutMs <= 0
        ? Promise.resolve<'late'>('late')
        : new Promise<'late'>((resolve) => {
            fenceTimer = setLongTimeout(() => resolve('late'), this.#options.fenceTimeoutMs);
          });
    const preparing = prepareContext(pooled);
    let handles: PreludeHandles | 'late';
    try {
      handles = await Promise.race([preparing, fence]);
    } catch {
      this.#retire(pooled, 'troubled');
      return;
    } finally {
      clearLongTimeout(fenceTimer);
    }
    if (handles === 'late') {
      this.#retire(pooled, 'fence');
      preparing.then(releaseHandles, () => undefined);
      return;
    }
    if (this.#closed) {
      this.#retire(pooled, 'closed', handles);
      return;
    }
    if (this.#heapInUse(pooled) > this.#options.retireHeapFraction * pooled.memoryMb * MB) {
      this.#retire(pooled, 'heap', handles);
      return;
    }
    this.#offer(pooled, handles);
  }

  /** Hands a ready isolate to a waiting call, or makes it idle (or disposes it if enough are). */
  #offer(pooled: PooledIsolate, handles: PreludeHandles): void {
    if (this.#closed) {
      this.#retire(pooled, 'closed', handles);
      return;
    }
    const waiter = this.#waiters.get(pooled.memoryMb)?.shift();
    if (waiter !== undefined) {
      waiter({ pooled, handles });
      return;
    }
    const list = this.#idle.get(pooled.memoryMb) ?? [];
    if (list.length >= this.#options.maxIdlePerLimit || this.stats.idle >= this.#options.maxIdle) {
      this.#retire(pooled, 'surplus', handles);
      return;
    }
    const idle: IdleIsolate = { pooled, handles };
    pooled.idleTimer = setLongTimeout(() => {
      const at = list.indexOf(idle);
      if (at >= 0) list.splice(at, 1);
      this.#retire(pooled, 'idle', handles);
    }, this.#options.idleTimeoutMs);
    pooled.idleTimer.unref();
    list.push(idle);
    this.#idle.set(pooled.memoryMb, list);
  }

  #heapInUse(pooled: PooledIsolate): number {
    try {
      const heap = pooled.isolate.getHeapStatisticsSync();
      return heap.used_heap_size + heap.externally_allocated_size;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  #retire(pooled: PooledIsolate, reason: RetireReason, handles?: PreludeHandles): void {
    clearLongTimeout(pooled.idleTimer);
    if (handles !== undefined) releaseHandles(handles);
    if (!this.#live.delete(pooled)) return;
    this.#stats.retired[reason] += 1;
    if (!pooled.isolate.isDisposed) pooled.isolate.dispose();
  }
}

/**
 * Resolves after the current turn of the event loop, so work on behalf of the next call (a new
 * context, a spare isolate) starts after this call's answer has been sent.
 */
function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Creates a new context in `pooled`'s isolate and runs the prelude in it. The context is created
 * by a task on the isolate's own thread (the fence: it runs only once the isolate's earlier work
 * has drained); the isolate is idle from then on, so the prelude runs and its two References are
 * taken on this thread: three more tasks sent to the isolate's thread and answered back cost two
 * thread wake-ups each (issue 17: about 0.1 ms of the host's CPU per call).
 */
async function prepareContext(pooled: PooledIsolate): Promise<PreludeHandles> {
  const context = await pooled.isolate.createContext();
  try {
    const exports = pooled.prelude.runSync(context, { reference: true }) as ivm.Reference<Record<string, unknown>>;
    const run = exports.getSync('run', { reference: true }) as unknown as PreludeHandles['run'];
    const settle = exports.getSync('settle', { reference: true }) as unknown as PreludeHandles['settle'];
    return { context, exports, run, settle };
  } catch (error) {
    context.release();
    throw error;
  }
}

function releaseHandles(handles: PreludeHandles): void {
  for (const release of [() => handles.run.release(), () => handles.settle.release(), () => handles.exports.release(), () => handles.context.release()]) {
    try {
      release();
    } catch {
      // Already released, or the isolate is gone: nothing is held any more.
    }
  }
}
