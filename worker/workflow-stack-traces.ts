/**
 * Whether the workflow sandbox collects stack traces (`WARDEN_WORKFLOW_STACK_TRACES`, `off` by default).
 *
 * Why it is a setting: the Temporal SDK (1.24, worker/lib/workflow/vm-shared.js) installs a V8
 * promise hook on the workflow thread that, for every promise created in workflow code, builds an
 * `Error().stack` and maps each frame through the bundle's source map. That is what the Temporal
 * UI's "Stack Trace" tab (the `__stack_trace` and `__enhanced_stack_trace` queries) shows, and what
 * failures raised in workflow code carry in the history. It is also about a third of the workflow
 * thread's CPU per guarded step, plus the garbage it leaves (bench/README.md, "To see where a
 * guarded step's worker time goes"). The SDK has no option to turn it off.
 *
 * Why `off` is the default: the stacks are of Warden's own workflow code (users write tasks, not
 * workflows), they are no security evidence, and they cost every task a third of its workflow CPU.
 * `on` brings them back for debugging Warden itself.
 *
 * `off` creates the worker's workflow threads with V8's `--stack-trace-limit=0`, so every stack
 * captured in the workflow sandbox (and on the workflow thread) is empty, and the workflow thread
 * Warden starts does not install the SDK's promise hook at all (workflow-thread-prestart.ts
 * `promiseHookOffSource`; a thread the SDK spawns itself, in its debug mode, keeps it, at a few
 * microseconds a promise). What stops working: the stack-trace queries still answer, but list no
 * stack; failures raised in workflow code reach the history without a stack.
 * Nothing of Warden's own is lost: task results, custody records and error codes do not use
 * stacks, and activities (main thread) keep theirs. Replay is unaffected (stacks are never part
 * of a command).
 *
 * Scope: V8 reads the flag when a context is created, and `Worker.create` returns only once its
 * workflow threads have created theirs, so the flag is set around `Worker.create` only
 * ({@link withWorkflowStackTraces}); contexts created elsewhere in the process during that call
 * get the same limit.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfigError } from '../errors';

export const WORKFLOW_STACK_TRACES_ENV = 'WARDEN_WORKFLOW_STACK_TRACES';

export type WorkflowStackTraces = 'on' | 'off';

/**
 * The setting in `env`: `off` (default, also for an empty value) or `on`.
 * @throws ConfigError `ERR_CONFIG_INVALID` for any other value, naming the variable.
 */
export function workflowStackTracesOf(env: NodeJS.ProcessEnv): WorkflowStackTraces {
  const raw = env[WORKFLOW_STACK_TRACES_ENV];
  if (raw === undefined || raw.trim() === '') return 'off';
  const value = raw.trim().toLowerCase();
  if (value === 'on' || value === 'off') return value;
  throw new ConfigError('ERR_CONFIG_INVALID', `${WORKFLOW_STACK_TRACES_ENV} must be "on" or "off", not ${JSON.stringify(raw)}`);
}

/** `off` creations under way, and the limit to put back when the last one ends. */
let offCreations = 0;
let limitBefore = 10;

/**
 * Runs `create` (which must create the workflow threads and their contexts before it resolves, as
 * `Worker.create` does) with workflow stack traces as `setting` says; `on` changes nothing.
 */
export async function withWorkflowStackTraces<T>(setting: WorkflowStackTraces, create: () => Promise<T>): Promise<T> {
  if (setting === 'on') return create();
  if (offCreations === 0) {
    // What new contexts get now (V8's 10, or node's --stack-trace-limit): a fresh context tells,
    // whatever this realm's own Error.stackTraceLimit was set to since.
    const before = runInNewContext('Error.stackTraceLimit') as unknown;
    limitBefore = typeof before === 'number' && Number.isInteger(before) && before >= 0 ? before : 10;
    setFlagsFromString('--stack-trace-limit=0');
  }
  offCreations += 1;
  try {
    return await create();
  } finally {
    // Overlapping `off` creations: the last one to end restores what was there before the first.
    offCreations -= 1;
    if (offCreations === 0) setFlagsFromString(`--stack-trace-limit=${limitBefore}`);
  }
}
