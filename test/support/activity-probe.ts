/**
 * An activity interceptor for tests that watch or edit the activities of chosen workflows: each
 * workflow in `modes` has its activities passed to `around` with its mode; others run untouched.
 * Edits to a result are what the workflow sees, on replay too (the result is recorded).
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface ProbedCall<M> {
  activityType: string;
  isLocal: boolean;
  workflowId: string;
  mode: M;
  /** The activity's arguments: editing them changes what it is told. */
  args: unknown[];
}

export function activityProbe<M>(modes: ReadonlyMap<string, M>, around: (call: ProbedCall<M>, next: () => Promise<unknown>) => Promise<unknown>): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const workflowId = ctx.info.workflowExecution?.workflowId ?? '';
        const mode = modes.get(workflowId);
        if (mode === undefined) return next(input);
        return around({ activityType: ctx.info.activityType, isLocal: ctx.info.isLocal, workflowId, mode, args: [...input.args] }, () => next(input));
      },
    },
  });
}
