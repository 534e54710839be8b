/** Where Warden keeps its state (embedded server data, caches, later keys and ledgers). */
import { resolve } from 'node:path';

export function stateDirOf(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.WARDEN_STATE_DIR ?? '.warden');
}
