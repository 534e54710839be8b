/**
 * Which @temporalio/worker release is installed, and whether it is the release line whose
 * internals Warden's start-up overrides were read against (worker/prestarted-thread-worker.ts,
 * worker/deferred-sdk-bundler.ts). Imports nothing of the SDK but its package.json, so a module
 * can ask before `@temporalio/worker` itself is loaded.
 */

/** The @temporalio/worker release line whose internals (worker.js, threaded-vm.js, workflow/bundler.js) were read. */
export const KNOWN_SDK_RELEASE_LINE = '1.24.';

/** The installed @temporalio/worker version (its package.json), or undefined when it cannot be read. */
export function installedSdkVersion(): string | undefined {
  try {
    return (require('@temporalio/worker/package.json') as { version?: unknown }).version as string | undefined;
  } catch {
    return undefined;
  }
}

/** Whether `version` is of the release line the overrides were written for (`1.24.x`, no pre-release). */
export function knownSdkInternals(version: string | undefined): boolean {
  return typeof version === 'string' && version.startsWith(KNOWN_SDK_RELEASE_LINE) && /^\d+\.\d+\.\d+$/.test(version);
}
