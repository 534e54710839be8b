/** Where Warden keeps what it can rebuild (the built Temporal CLI, MCP packages, compiled-code caches). */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** `WARDEN_CACHE_DIR`, else `$XDG_CACHE_HOME/warden`, else `~/.cache/warden`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WARDEN_CACHE_DIR) return resolve(env.WARDEN_CACHE_DIR);
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'warden');
  return join(env.HOME || homedir(), '.cache', 'warden');
}
