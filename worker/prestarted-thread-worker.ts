/**
 * `Worker.create` with two start-up costs taken off its critical path (issue 17), and held before
 * its Core worker until it will run, through the SDK's own protected extension points
 * (`getOrCreateBundle`, `createWorkflowCreator`, `nativeWorkerCtor`; @temporalio/worker 1.24):
 *
 * - The workflow thread is one spawned earlier (worker/workflow-thread-prestart.ts), already past
 *   loading its modules; it gets the same `init` request `ThreadedVMWorkflowCreator.create` sends.
 * - A bundle given as code is not compiled and run once more on the main thread first. The SDK's
 *   `parseWorkflowCode` does that only to preload the script for a debugger ("makes breakpoints
 *   more reliable"), ignores any error it throws, and drops it 10 s later: no check. It costs a
 *   full compile and run of the 2-3 MB bundle on the main thread before the thread can start
 *   loading it. Everything else it does (split off the inline source map, point the map's `file`
 *   at an absolute path) is done here the same way.
 *
 * And the Core worker, the part that polls, is registered only when the caller knows the Worker
 * will run ({@link HeldWorker}); the SDK has no way to let go of a created Worker without running it.
 *
 * Anything else (a bundle path, `workflowsPath`, debug mode, no reusable V8 context, more than one
 * thread) goes to the SDK's own code unchanged.
 */
import { resolve } from 'node:path';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { ThreadedVMWorkflowCreator, WorkerThreadClient } from '@temporalio/worker/lib/workflow/threaded-vm';
import type { WorkflowBundleWithSourceMapAndFilename } from '@temporalio/worker/lib/workflow/workflow-worker-thread/input';
import type { PrestartedWorkflowThread } from './workflow-thread-prestart';
import { withWorkflowStackTraces } from './workflow-stack-traces';

type SdkWorkerStatics = {
  getOrCreateBundle(compiledOptions: CompiledOptions, logger: unknown): Promise<ParsedBundle | undefined>;
  createWorkflowCreator(bundle: ParsedBundle, compiledOptions: CompiledOptions, logger: unknown): Promise<unknown>;
};
/** The parts of the SDK's compiled worker options read here. */
interface CompiledOptions {
  workflowBundle?: { code?: string; codePath?: string };
  workflowsPath?: string;
  debugMode?: boolean;
  reuseV8Context?: boolean;
  workflowThreadPoolSize: number;
  isolateExecutionTimeoutMs: number;
  activities: Map<string, unknown>;
  patchActivationCallback?: unknown;
}
interface ParsedBundle {
  code: string;
  sourceMap: { file?: string };
  filename: string;
}

const INLINE_MAP_MARK = '//# sourceMappingURL=data:';

/**
 * `parseWorkflowCode` of @temporalio/worker 1.24 (worker.js) without its debugger preload: the
 * code with the inline source map's `file` made absolute, the parsed map, and the file name.
 * @throws Error as the SDK's ("Can't extract inlined source map ...") when the code has no inline map.
 */
export function parseBundleCode(code: string): ParsedBundle {
  const at = code.lastIndexOf(INLINE_MAP_MARK);
  const base64At = at > 0 ? code.indexOf('base64,', at) : -1;
  if (base64At <= 0) throw new Error("Can't extract inlined source map from the provided Workflow Bundle");
  const sourceMap = JSON.parse(Buffer.from(code.slice(base64At + 'base64,'.length).trimEnd(), 'base64').toString()) as { file?: string };
  // `file` read exactly as the SDK reads it: a map without a string `file` (missing, null, a
  // number) is refused with the SDK's own TypeError, not started under the current folder's name.
  const filename = resolve(process.cwd(), sourceMap.file as string);
  sourceMap.file = filename;
  return { code: `${code.slice(0, at)}\n${INLINE_MAP_MARK}application/json;base64,${Buffer.from(JSON.stringify(sourceMap)).toString('base64')}`, sourceMap, filename };
}

/**
 * A Worker built up to the point where the SDK registers its Core worker (the part that polls),
 * and held there until it is certain to run: everything before it (the bundle parsed, the workflow
 * thread loading it) overlaps with what else a Warden worker waits for, and a Worker that must
 * not run after all is never created, so it has nothing that could poll (issue 17: a Worker let
 * go of unrun with `run()` then `shutdown()` took a task waiting on its queue).
 */
export interface HeldWorker {
  /** Settles once everything before the Core worker is done; rejects as `Worker.create` would. Never rejects unhandled. */
  readonly prepared: Promise<void>;
  /** Registers the Core worker and resolves to the Worker (call once, when it will run). */
  create(): Promise<Worker>;
  /** Ends what was prepared (the workflow thread) and creates no Core worker. Never throws. */
  discard(): Promise<void>;
}

/** The SDK's static the Core worker is registered through (worker.js, `Worker.create`). */
type NativeWorkerCtor = { create(...args: unknown[]): Promise<unknown> };

/**
 * `Worker.create(options)` held before its Core worker (see {@link HeldWorker}), on `thread` when
 * one is given and still usable (else the SDK spawns its own), and without the main-thread
 * preload of a code bundle. On an SDK release line other than the one read here (`sdkVersion`,
 * default the installed one) nothing is prepared ahead: `create` is the SDK's own `Worker.create`,
 * under the same once-guard.
 */
export function holdWorkerOnThread(options: WorkerOptions, thread?: PrestartedWorkflowThread, sdkVersion = installedSdkVersion()): HeldWorker {
  // package.json takes the SDK by a caret range, so an install elsewhere may hold a release whose
  // protected statics or thread protocol differ: only the release line read here takes this path.
  if (!knownSdkInternals(sdkVersion)) {
    const prepared = thread?.discard() ?? Promise.resolve();
    // Nothing is held ahead here, but the once-guard is the same: after create() or discard(),
    // create() refuses before the SDK registers anything (a discarded worker never polls).
    const once = heldOnce();
    return {
      prepared,
      async create() {
        once.create();
        return Worker.create(options);
      },
      async discard() {
        once.discard();
        await prepared;
      },
    };
  }
  const sdk = Worker as unknown as SdkWorkerStatics & { nativeWorkerCtor: NativeWorkerCtor };
  const FastStartWorker = class extends Worker {};
  const statics = FastStartWorker as unknown as SdkWorkerStatics & { nativeWorkerCtor: NativeWorkerCtor };
  let creator: { destroy(): Promise<void> } | undefined;
  statics.getOrCreateBundle = async (compiledOptions, logger) => {
    const code = compiledOptions.workflowBundle?.code;
    if (typeof code !== 'string' || compiledOptions.workflowsPath !== undefined) return sdk.getOrCreateBundle.call(Worker, compiledOptions, logger);
    return parseBundleCode(code);
  };
  statics.createWorkflowCreator = async (bundle, compiledOptions, logger) => {
    creator = (await workflowCreatorOn(thread, bundle, compiledOptions, logger)) as { destroy(): Promise<void> };
    return creator;
  };
  // The gate: the SDK registers the Core worker only once `create` opened it; `discard` closes it,
  // and `Worker.create` then fails before any Core worker exists.
  let open!: () => void;
  let close!: (reason: Error) => void;
  const gate = new Promise<void>((resolve, reject) => {
    open = resolve;
    close = reject;
  });
  gate.catch(() => undefined);
  let atGate!: () => void;
  const reachedGate = new Promise<void>((resolve) => (atGate = resolve));
  statics.nativeWorkerCtor = {
    async create(...args: unknown[]) {
      atGate();
      await gate;
      return sdk.nativeWorkerCtor.create(...args);
    },
  };
  const creating = FastStartWorker.create(options);
  creating.catch(() => undefined);
  const prepared = Promise.race([reachedGate, creating.then(() => undefined)]);
  prepared.catch(() => undefined);
  const once = heldOnce();
  return {
    prepared,
    async create() {
      once.create();
      open();
      try {
        return await creating;
      } catch (error) {
        // The SDK keeps the workflow threads of a Worker whose Core worker was refused.
        await creator?.destroy().catch(() => undefined);
        throw error;
      }
    },
    async discard() {
      if (!once.discard()) return;
      close(new Error('the held Worker was discarded'));
      await creating.catch(() => undefined);
      await creator?.destroy().catch(() => undefined);
      await thread?.discard();
    },
  };
}

/**
 * A {@link HeldWorker}'s once-guard: `create()` throws a TypeError (the caller's misuse) once the
 * worker was created or discarded, else marks it used; `discard()` marks it used and says whether
 * it was the first use.
 */
function heldOnce(): { create(): void; discard(): boolean } {
  let used = false;
  return {
    create() {
      if (used) throw new TypeError('a held Worker is created or discarded once');
      used = true;
    },
    discard() {
      const first = !used;
      used = true;
      return first;
    },
  };
}

/** The workflow creator `Worker.create` makes, on the prestarted thread when it can be used. */
async function workflowCreatorOn(thread: PrestartedWorkflowThread | undefined, bundle: ParsedBundle, compiledOptions: CompiledOptions, logger: unknown): Promise<unknown> {
  const sdk = Worker as unknown as SdkWorkerStatics;
  const reuseV8Context = compiledOptions.reuseV8Context ?? true;
  const own = compiledOptions.debugMode === true || !reuseV8Context || compiledOptions.workflowThreadPoolSize !== 1 ? undefined : thread?.take();
  if (own === undefined || thread === undefined) return sdk.createWorkflowCreator.call(Worker, bundle, compiledOptions, logger);
  // As ThreadedVMWorkflowCreator.create, with the thread already there.
  const patchActivationCallback = compiledOptions.patchActivationCallback as ConstructorParameters<typeof WorkerThreadClient>[2];
  const client = new WorkerThreadClient(own, logger as ConstructorParameters<typeof WorkerThreadClient>[1], patchActivationCallback);
  try {
    await client.send({
      type: 'init',
      // The SDK's type wants a full RawSourceMap; the map is passed on as parsed, as the SDK does.
      workflowBundle: bundle as unknown as WorkflowBundleWithSourceMapAndFilename,
      isolateExecutionTimeoutMs: compiledOptions.isolateExecutionTimeoutMs,
      reuseV8Context,
      registeredActivityNames: new Set(compiledOptions.activities.keys()),
      hasPatchActivationCallback: patchActivationCallback !== undefined,
    });
  } catch (error) {
    await client.destroy().catch(() => undefined);
    throw error;
  }
  const creator = new ThreadedVMWorkflowCreator([client]);
  // The thread saves its bundle's code cache when it is destroyed (workflow-thread-prestart.ts), and
  // V8 takes that data only under the flags the bundle was compiled under: its init ran inside
  // `withWorkflowStackTraces` (`Worker.create`), so the destroy does too.
  const destroy = creator.destroy.bind(creator);
  creator.destroy = () => withWorkflowStackTraces(thread.stackTraces, destroy);
  return creator;
}

/** The @temporalio/worker release line whose internals (worker.js, threaded-vm.js) this module was read against. */
export const KNOWN_SDK_RELEASE_LINE = '1.24.';

/** The installed @temporalio/worker version (its package.json), or undefined when it cannot be read. */
export function installedSdkVersion(): string | undefined {
  try {
    return (require('@temporalio/worker/package.json') as { version?: unknown }).version as string | undefined;
  } catch {
    return undefined;
  }
}

/** Whether `version` is of the release line this module's overrides were written for (`1.24.x`, no pre-release). */
export function knownSdkInternals(version: string | undefined): boolean {
  return typeof version === 'string' && version.startsWith(KNOWN_SDK_RELEASE_LINE) && /^\d+\.\d+\.\d+$/.test(version);
}
