/**
 * How a capability failure crosses into the isolate. Host capability functions throw
 * `CapabilityError`s; the bridge never lets a host exception object (or its stack, or its
 * `cause`) cross: it turns every failure into a plain `{ ok: false, code, message }` outcome that
 * is *copied* in, and unexpected failures get a generic message so host internals do not leak.
 */
import { CapabilityError, type ErrorCode } from '../../errors';
import { cutText } from '../../cut-text';

/** Longest message of a capability failure handed to tool code. */
const MAX_MESSAGE_CHARS = 1000;

/** The copied result of one capability call, as the isolate sees it. */
export type CapabilityOutcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

/** Shorthand for throwing a capability failure with a stable code. */
export function capabilityError(code: ErrorCode, message: string, details?: Record<string, unknown>): CapabilityError {
  return new CapabilityError(code, message, details === undefined ? {} : { details });
}

/**
 * `error` as a `CapabilityError`: typed ones pass through, anything else (a bug in a capability,
 * a library error) becomes `fallbackCode` with a generic message.
 */
export function toCapabilityError(error: unknown, fallbackCode: ErrorCode): CapabilityError {
  if (error instanceof CapabilityError) return error;
  return new CapabilityError(fallbackCode, 'the capability failed unexpectedly', { cause: error });
}

/** The outcome of a failed capability call, with a bounded message. */
export function failedOutcome(error: CapabilityError): CapabilityOutcome<never> {
  const message = error.message.length > MAX_MESSAGE_CHARS ? `${cutText(error.message, MAX_MESSAGE_CHARS)}…` : error.message;
  return { ok: false, code: error.code, message };
}
