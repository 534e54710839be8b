/** The version of the installed Warden package, read from its package.json (sources or build alike). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/** `version` of the nearest package.json above this module that is Warden's own; `unknown` if none. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'warden') return (cached = pkg.version ?? 'unknown');
    } catch {
      // none here: look further up
    }
  }
  return (cached = 'unknown');
}
