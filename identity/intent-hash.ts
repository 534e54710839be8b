/**
 * The hash a task grant binds instead of the user's words. Apart from task-grant.ts (which
 * re-exports it) so that code recording it (custody span attributes, e.g. in `warden run`'s client)
 * does not load the JWT library.
 */
import { createHash } from 'node:crypto';

/** `sha256:<hex>` of the user's intent: what the grant binds without carrying the words. */
export function hashIntent(intent: string): string {
  return `sha256:${createHash('sha256').update(intent, 'utf8').digest('hex')}`;
}
