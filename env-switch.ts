/**
 * How Warden reads an on/off environment variable that is on unless turned off
 * (`WARDEN_TELEMETRY`, `WARDEN_CODE_CACHE`). Imports nothing: bin/warden.js's code cache reads it
 * before anything else is loaded.
 */

/** The values, trimmed and in any case, that turn such a switch off. */
const OFF_VALUES: readonly string[] = ['0', 'false', 'off', 'no'];

/** Whether `value` (an environment variable, undefined when unset) turns its switch off. */
export function switchedOff(value: string | undefined): boolean {
  return OFF_VALUES.includes((value ?? '').trim().toLowerCase());
}
