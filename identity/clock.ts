/**
 * Time as the identity layer sees it. Every expiry decision takes an injected clock so tests can
 * freeze time instead of sleeping; production uses the system clock.
 */

/** Milliseconds since the epoch, like `Date.now`. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** JWT NumericDate (whole seconds) of an epoch-ms instant, rounded down. */
export function toNumericDate(epochMs: number): number {
  return Math.floor(epochMs / 1000);
}
