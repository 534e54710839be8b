/**
 * An activity interceptor that makes every string of an activity's failure well-formed Unicode
 * before the SDK hands it to Temporal: its message, stack and name, and those of its causes.
 *
 * Why: Temporal's failure message and stack trace are protobuf `string`s, which must be UTF-8, and
 * a JavaScript string may hold a lone surrogate (a tool's `throw new Error(String.fromCharCode(0xd800))`,
 * an MCP server's error text, JSON "\ud800"). Unmended, Core refuses the whole activity completion
 * ("Cannot decode Completion from buffer: DecodeError { description: InvalidString }") and the
 * worker stops, with every task it runs (test/attacks/tool-error-lone-surrogate-kills-worker.test.ts).
 * Lone surrogates become U+FFFD, as `String.prototype.toWellFormed` does (custody/span-record.ts `wellFormed`).
 */
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import { wellFormed } from '../custody/span-record';

/** Mends `error` and its causes in place (an error that refuses the change is left as it is). */
export function mendFailureStrings(error: unknown, seen: Set<unknown> = new Set()): void {
  if (typeof error !== 'object' || error === null || seen.has(error)) return;
  seen.add(error);
  const fields = error as Record<string, unknown>;
  for (const key of ['message', 'stack', 'name'] as const) {
    const value = fields[key];
    if (typeof value !== 'string') continue;
    const mended = wellFormed(value);
    if (mended === value) continue;
    try {
      Object.defineProperty(error, key, { value: mended, writable: true, configurable: true, enumerable: Object.prototype.propertyIsEnumerable.call(error, key) });
    } catch {
      // A frozen error: Core refuses it as before, nothing else is lost.
    }
  }
  mendFailureStrings(fields.cause, seen);
}

class WellFormedFailureInterceptor implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    try {
      return await next(input);
    } catch (error) {
      mendFailureStrings(error);
      throw error;
    }
  }
}

/** First in a worker's activity interceptors (outermost): it sees the failure as it leaves for Temporal. */
export const wellFormedFailureInterceptorFactory: ActivityInterceptorsFactory = () => ({ inbound: new WellFormedFailureInterceptor() });
