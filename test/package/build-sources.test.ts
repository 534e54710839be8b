/**
 * The package is built from the folders tsconfig.build.json lists: a new source folder left out of
 * it compiles and tests fine from a checkout but is missing from the installed package (the
 * console's page was, once). Every top-level folder holding TypeScript is either built or named
 * here as not part of the package.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
/** Folders with TypeScript that are not shipped: tests, benchmarks, build scripts, examples. */
const NOT_SHIPPED = new Set(['test', 'bench', 'scripts', 'bin', 'examples', 'deploy', 'node_modules', 'build']);

function holdsTypeScript(dir: string): boolean {
  return readdirSync(dir, { withFileTypes: true }).some((entry) =>
    entry.isDirectory() ? holdsTypeScript(join(dir, entry.name)) : entry.name.endsWith('.ts'),
  );
}

describe('the package build', () => {
  it('compiles every source folder', () => {
    const include = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
    const sourceFolders = readdirSync(ROOT, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !NOT_SHIPPED.has(entry.name))
      .map((entry) => entry.name)
      .filter((name) => holdsTypeScript(join(ROOT, name)));
    expect(sourceFolders.filter((name) => !include.includes(name))).toEqual([]);
  });
});
