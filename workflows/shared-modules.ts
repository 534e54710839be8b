/**
 * Not a workflow: the module the workflow bundle preloads once per workflow thread
 * (`bundlerOptions.preloadModules`, see worker/workflow-bundle.ts `PRELOADED_MODULES`). With the
 * SDK's reusable V8 context every workflow run otherwise evaluates every module it imports
 * afresh, once per task. What this module imports is evaluated once, before any workflow exists,
 * shared by every run on the thread, and deep-frozen by the SDK.
 *
 * Only libraries that never write to what they export belong here, and only the SHA-256 code is.
 * zod was here and was taken out: the freeze reaches its exported RegExp constants (`email`,
 * `guid`, `ipv4`, `date`, ...), and zod sets `lastIndex` on a format's pattern before every test,
 * which a frozen RegExp refuses, so a workflow-side schema of such a format would throw on every
 * value and fail its workflow task forever; and its registry of schema ids would be shared by every
 * run (an attack finding; test/workflows/shared-modules.test.ts holds the class: no RegExp and no
 * zod among the shared modules). Warden's own modules do not belong here either: their zod
 * schemas fill lazily computed members on first use, which a frozen schema refuses.
 *
 * SHA-256 keeps a scratch buffer at module level (a typed array, which the freeze leaves
 * writable); a digest is synchronous and runs on one thread, so no run sees another's data in it.
 *
 * Deterministic code only, like all workflow code.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/** Hashes once, so the preload has run every path a digest takes before the freeze. */
export function warm(): void {
  bytesToHex(sha256(utf8ToBytes('')));
}

warm();
