// When `prepare` may skip the build. `npx warden` in a checkout installs the checkout as a folder
// package the first time, and npm runs its `prepare` script for that (with npm_command=exec): the
// whole build again, minutes on a small machine, with no output, right after `npm ci` built it.
// Only that case is skipped, and only while the build is as new as every source it was made from
// (the same test bin/warden.js makes before running build/); `npm ci`, `npm install` and
// `npm run build` always build, since the pre-built workflow bundles also hold code from
// node_modules, which those commands may have changed.
'use strict';
const { existsSync, readdirSync, readFileSync, statSync } = require('node:fs');
const { extname, join } = require('node:path');

/** True when some source or data file under `dir` changed after `since` (ms). */
function changedSince(dir, since) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (changedSince(path, since)) return true;
    } else if (extname(entry.name) !== '.md' && statSync(path).mtimeMs > since) {
      return true;
    }
  }
  return false;
}

/**
 * True when `<root>/build/BUILD_STAMP` exists and no file listed by `<root>/tsconfig.build.json`'s
 * `include` (a file, or every non-Markdown file under a folder) is newer than it.
 */
function buildIsFresh(root) {
  const stamp = join(root, 'build', 'BUILD_STAMP');
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
  return !include.some((entry) => {
    const path = join(root, entry);
    if (entry.endsWith('.ts')) return !existsSync(path) || statSync(path).mtimeMs > built;
    return changedSince(path, built);
  });
}

/** True when this run is npm's `prepare` for `npm exec` / `npx` and the build is fresh. */
function prepareMaySkip(env, root) {
  return env.npm_lifecycle_event === 'prepare' && env.npm_command === 'exec' && buildIsFresh(root);
}

module.exports = { buildIsFresh, prepareMaySkip };
