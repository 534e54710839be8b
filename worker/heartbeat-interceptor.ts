/**
 * Keeps every activity that has a heartbeat timeout heartbeating while it runs, so a worker that
 * dies mid-activity is noticed after the heartbeat timeout instead of the (much longer)
 * start-to-close timeout. Activities themselves stay free of heartbeat code: a model call or a
 * sandboxed tool runs in another process, and the worker's event loop is free to beat.
 */
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { MAX_TIMER_MS } from '../long-timer';

export class HeartbeatInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const timeoutMs = this.context.info.heartbeatTimeoutMs;
    if (timeoutMs === undefined || timeoutMs <= 0) return next(input);
    // A third of the timeout: two beats may be late on a loaded machine before the server gives up.
    // At most a timer's cap (2^31 - 1 ms): a longer interval would beat every millisecond.
    const beat = setInterval(() => this.context.heartbeat(), Math.min(MAX_TIMER_MS, Math.max(100, Math.floor(timeoutMs / 3))));
    try {
      return await next(input);
    } finally {
      clearInterval(beat);
    }
  }
}

/** For `WorkerOptions.interceptors.activity`. */
export function heartbeatInterceptorFactory(context: Context): { inbound: ActivityInboundCallsInterceptor } {
  return { inbound: new HeartbeatInterceptor(context) };
}
