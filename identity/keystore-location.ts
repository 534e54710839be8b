/**
 * Where the credential authority's keystore lives in a state folder. Apart from keystore.ts (which
 * re-exports it) so that code that only protects or names the folder (the task check of
 * `warden run`, worker/warden-resources.ts) does not load the JWT library.
 */

/** The keystore's folder, relative to the state folder. */
export const KEYS_DIR = 'keys';
