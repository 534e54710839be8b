/** Where Warden keeps its state (embedded server data, caches, later keys and ledgers). */
import { join, resolve } from 'node:path';

/** `WARDEN_STATE_DIR` (an empty value counts as unset), else `<cwd>/.warden`. */
export function stateDirOf(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return env.WARDEN_STATE_DIR ? resolve(cwd, env.WARDEN_STATE_DIR) : join(cwd, '.warden');
}
