/**
 * Watches `runTool` activities from inside the worker: how each one of a watched workflow ended
 * and which processes of its program were alive at that moment, read from /proc. For tests that
 * a task ending while its tool runs stops the tool (no timing: the activity's own end is the cue).
 */
import * as fs from 'node:fs';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { followAgentTask } from '../../client/start-agent-task';
import { cutText } from '../../cut-text';

/** How one runTool activity ended, and the program's processes alive right then. */
export interface ActivityEnd {
  outcome: 'completed' | 'failed';
  /** The thrown error's name (`CancelledFailure` for an activity that ended as cancelled). */
  error?: string;
  /** An ApplicationFailure's type (Warden's error code), e.g. ERR_DEADLINE_EXCEEDED for a call stopped at the deadline. */
  code?: string;
  alive: number[];
}

/** What was true when the task went on to its end (its saga's or its revocation's first activity started). */
export interface TaskEndStart {
  /** The activity that started: `compensate`, `restorePreTaskSnapshot`, `commitTask` or `endTask`. */
  activity: string;
  /** Whether the watched runTool activity had ended by then. */
  runToolEnded: boolean;
  alive: number[];
}

/** The activities a task runs once its loop is over (the saga, the grant's revocation). */
const TASK_END_ACTIVITIES = new Set(['compensate', 'restorePreTaskSnapshot', 'commitTask', 'endTask']);

const watched = new Map<string, { marker: string; resolve: (end: ActivityEnd) => void; ended?: boolean }>();
const endings = new Map<string, { marker: string; resolve: (start: TaskEndStart) => void }>();

/** Host pids whose command line holds `marker` (a sandbox's processes show in the host's /proc). */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      // A zombie's command line is empty: it runs nothing.
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone while listed
    }
  }
  return found;
}

/** Resolves when the first runTool activity of `workflowId` ends; `marker` names its program's processes. */
export function watchRunToolOf(workflowId: string, marker: string): Promise<ActivityEnd> {
  return new Promise((resolve) => watched.set(workflowId, { marker, resolve }));
}

/**
 * Resolves when the first activity of `workflowId`'s end (TASK_END_ACTIVITIES) starts, with the
 * program's processes alive then and whether the runTool `watchRunToolOf` watches had ended: a task
 * that waits for its cancelled call has none alive and the call ended.
 */
export function watchTaskEndOf(workflowId: string, marker: string): Promise<TaskEndStart> {
  return new Promise((resolve) => endings.set(workflowId, { marker, resolve }));
}

/** For `activityInterceptors` of the test worker. */
export function runToolWatchInterceptor(context: Context): { inbound: ActivityInboundCallsInterceptor } {
  return {
    inbound: {
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
        const workflowId = context.info.workflowExecution?.workflowId ?? '';
        const ending = TASK_END_ACTIVITIES.has(context.info.activityType) ? endings.get(workflowId) : undefined;
        if (ending !== undefined) {
          endings.delete(workflowId);
          ending.resolve({ activity: context.info.activityType, runToolEnded: watched.get(workflowId)?.ended === true, alive: processesWith(ending.marker) });
        }
        const watch = context.info.activityType === 'runTool' ? watched.get(workflowId) : undefined;
        try {
          const result = await next(input);
          watch?.resolve({ outcome: 'completed', alive: processesWith(watch.marker) });
          return result;
        } catch (error) {
          const code = error instanceof ApplicationFailure && typeof error.type === 'string' ? { code: error.type } : {};
          watch?.resolve({ outcome: 'failed', error: (error as Error).name, ...code, alive: processesWith(watch.marker) });
          throw error;
        } finally {
          if (watch !== undefined) watch.ended = true;
        }
      },
    },
  };
}

/**
 * How a stopped `runTool` ends: cancelled, or on the data flow at the deadline failed
 * ERR_DEADLINE_EXCEEDED by its own worker (patch `warden-flow-call-deadline`); its tool dead.
 */
export function stoppedCall(way: string, loop: 'original loop' | 'data flow'): ActivityEnd {
  return way === 'deadline' && loop === 'data flow' ? { outcome: 'failed', error: 'ApplicationFailure', code: 'ERR_DEADLINE_EXCEEDED', alive: [] } : { outcome: 'failed', error: 'CancelledFailure', alive: [] };
}

/**
 * Waits (bounded) until `check` holds, polling every 100 ms. `calls`: the calls in flight whose
 * effect (or whose hold on something) the wait is for. Should one be answered first, what the
 * wait expects will not come: it fails at once with that answer, rather than polling on past the
 * test's timeout and leaving nothing said (a flake of cancel-spares-other-calls hung 180 s: a call
 * answered early, unseen). `check` is asked first: an effect that happened counts.
 */
export async function until(check: () => boolean, what: string, calls: Record<string, Promise<unknown>> = {}): Promise<void> {
  let answeredFirst: string | undefined;
  for (const [name, call] of Object.entries(calls)) {
    call.then(
      (answer) => (answeredFirst ??= `${name} was answered first: ${cutText(JSON.stringify(answer) ?? String(answer), 1000)}`),
      (error: unknown) => (answeredFirst ??= `${name} failed first: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  for (let i = 0; i < 6000; i++) {
    if (check()) return;
    if (answeredFirst !== undefined) throw new Error(`never: ${what}; ${answeredFirst}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never: ${what}`);
}

/** The status a task ended with: its result's, or for a cancelled task (which fails ERR_TASK_CANCELLED carrying its result) the result in the failure's details. */
export function endStatusOf(handle: WorkflowHandle): Promise<string | undefined> {
  return followAgentTask(handle).then(
    (result) => result.status,
    (error: unknown) => {
      const cause = error instanceof WorkflowFailedError ? error.cause : undefined;
      if (cause instanceof ApplicationFailure) return (cause.details?.[0] as { status?: string } | undefined)?.status;
      throw error;
    },
  );
}
