/**
 * A workflow thread started before its worker is (issue 17: `warden run`'s start-up).
 *
 * Most of a Temporal worker's start is its workflow thread's own: the thread loads the SDK's
 * thread module and what it imports (@temporalio/proto's protobuf root, the core bridge, gRPC:
 * about 0.7 s of CPU on the bench machine) before it can load the workflow bundle, and
 * `Worker.create` spawns it only once everything before it (the bundle read, the connection, the
 * namespace check) is done. Spawned here instead, as soon as a command knows it will run a
 * worker, the thread loads those modules on the other core while the main thread loads and checks
 * the task, imports the worker's modules and opens its stores; `Worker.create` then hands it the
 * bundle (worker/prestarted-thread-worker.ts). Nothing about the thread differs from the one the
 * SDK would spawn: the same module, the same `init` request, the same V8 context setup.
 *
 * This module imports node built-ins only (and the code cache, which does too), so a command can
 * call it before it loads anything else.
 */
import { Worker as NodeThread } from 'node:worker_threads';
import type { WorkflowStackTraces } from './workflow-stack-traces';
import { threadCodeCacheSource } from '../cli/module-code-cache';

/**
 * The file name of a workflow bundle as the SDK's bundler names it (`workflow-bundle-[fullhash].js`,
 * @temporalio/worker 1.24 bundler.js), which the thread compiles with `vm.Script` at its `init`.
 */
export const WORKFLOW_BUNDLE_FILE = /^workflow-bundle-[0-9a-f]+\.js$/;

/** The SDK's workflow thread entry (what `ThreadedVMWorkflowCreator.create` spawns). */
function workflowThreadModule(): string {
  return require.resolve('@temporalio/worker/lib/workflow/workflow-worker-thread');
}

/**
 * The thread's last statement before its code cache is saved: once the SDK's module has loaded, it
 * sets up the protobuf code of the first activation (worker/activation-decoding-warmup.ts), from the
 * @temporalio/proto the SDK's module uses. Only in the build (a thread cannot require the TypeScript
 * sources).
 */
function activationWarmupSource(): string {
  if (!__filename.endsWith('.js')) return '';
  const warmup = JSON.stringify(require.resolve('./activation-decoding-warmup'));
  // Resolved in the thread, from the SDK module's folder: the copy the SDK's thread uses.
  const proto = `require.resolve('@temporalio/proto', { paths: [require('node:path').dirname(${JSON.stringify(workflowThreadModule())})] })`;
  return `try { require(${warmup}).warmActivationDecoding(require(${proto})); } catch {}\n`;
}

/**
 * With stack traces `off`: the SDK's promise hook is not installed on the thread. The SDK (1.24,
 * worker/lib/workflow/vm-shared.js `GlobalHandlers.setPromiseHook`, run by the thread's `init`)
 * installs a V8 promise hook whose `init` runs for every promise the workflow code creates: it
 * captures an `Error().stack` (empty under `Error.stackTraceLimit = 0`, but still prepared) and
 * keeps it, with the promise's parents, in the run's store until the promise settles, only for the
 * stack-trace queries. With stacks off those entries hold no frame; the hook cost the workflow
 * thread about 0.35 ms of CPU per guarded call at 50 concurrent tasks, plus its garbage (issue 17).
 * `promiseHookInstalled` is still set, so the queries answer as before (with no stack) rather than
 * failing "stack traces are not enabled". An SDK whose handlers look otherwise is left as it is.
 */
function promiseHookOffSource(stackTraces: WorkflowStackTraces): string {
  if (stackTraces === 'on') return '';
  const vmShared = JSON.stringify(require.resolve('@temporalio/worker/lib/workflow/vm-shared'));
  return `try { const handlers = require(${vmShared}).globalHandlers; if (handlers?.installed === false && typeof handlers.setPromiseHook === 'function') handlers.setPromiseHook = function () { this.promiseHookInstalled = true; }; } catch {}\n`;
}

export interface PrestartedWorkflowThread {
  /** The stack-traces setting the thread was started with (a thread is only used for the same setting). */
  readonly stackTraces: WorkflowStackTraces;
  /**
   * The thread, for one worker (once; undefined afterwards, or when it has already exited or
   * failed: the worker then spawns its own). Held by the event loop again from here on.
   */
  take(): NodeThread | undefined;
  /** Ends the thread unless it was taken (a run that starts no worker). */
  discard(): Promise<void>;
}

/**
 * Spawns the SDK's workflow thread now. Until taken it does not keep the process alive, so a run
 * that ends early (a bad task file) exits as before; `discard` ends it at once.
 *
 * With `stackTraces` `off` the thread's own realm gets `Error.stackTraceLimit = 0` before the SDK
 * module loads, as `--stack-trace-limit=0` gives a thread spawned inside `withWorkflowStackTraces`
 * (workflow-stack-traces.ts); the workflow sandbox's V8 context is created by the `init` request,
 * which `Worker.create` sends inside `withWorkflowStackTraces` as before. With `off` the SDK's
 * promise hook is not installed either (promiseHookOffSource).
 */
export function prestartWorkflowThread(stackTraces: WorkflowStackTraces): PrestartedWorkflowThread {
  // The thread's modules compile with the code cache too when this process has one (cli/module-code-cache.ts),
  // and so does the workflow bundle: saved as the SDK destroys the thread, after it ran, its data
  // also holds the workflow functions the tasks called, which the next worker then does not compile.
  // One file per stack-trace setting: the setting changes V8's --stack-trace-limit at run time, a flag
  // the cache's key (taken from the command line) does not see, and V8 refuses data made under
  // another value; in one file, runs with each setting rewrote the whole file at every switch.
  const codeCache = threadCodeCacheSource(stackTraces === 'off' ? 'workflow-thread' : 'workflow-thread-stack-traces', WORKFLOW_BUNDLE_FILE);
  // Registered before the SDK's own listener: the data is written before the SDK answers the destroy request.
  const saveOnDestroy = codeCache.save === '' ? '' : `require('node:worker_threads').parentPort.on('message', (request) => { if (request?.input?.type === 'destroy') { ${codeCache.save.trim()} } });\n`;
  // Saved once what the thread loads now has loaded, the warm-up's module included: V8 takes data
  // only under the flags it was made under, and these modules compile under the flags of now, not
  // the stack-trace limit the destroy runs under. Left to the destroy, the warm-up's module was
  // saved under the other limit, refused by every next thread, compiled again and the whole file
  // (3.6 MB, the bundle's data with it) rewritten as each `warden run` ended (issue 17). A module
  // compiled before the main thread changed the flags (`Worker.create` begun first) is saved under
  // the new ones only where they have no data yet: the cache keeps data per V8 flags (module-code-cache.ts).
  const source = `${stackTraces === 'off' ? 'Error.stackTraceLimit = 0;\n' : ''}${codeCache.install}${saveOnDestroy}require(${JSON.stringify(workflowThreadModule())});\n${promiseHookOffSource(stackTraces)}${activationWarmupSource()}${codeCache.save}`;
  const thread = new NodeThread(source, { eval: true });
  thread.unref();
  let failed = false;
  // Until the SDK's client takes it, an error (a module that fails to load) is held here rather
  // than thrown on the main thread; the worker then spawns a thread of its own, which reports it.
  const onError = () => void (failed = true);
  thread.on('error', onError);
  thread.once('exit', () => void (failed = true));
  let taken = false;
  return {
    stackTraces,
    take() {
      if (taken || failed) return undefined;
      taken = true;
      thread.off('error', onError);
      thread.ref();
      return thread;
    },
    async discard() {
      if (taken) return;
      taken = true;
      await thread.terminate();
    },
  };
}
