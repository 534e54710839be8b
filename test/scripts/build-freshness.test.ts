// `prepare` skips the build only for npx's first link of a checkout whose build is up to date
// (scripts/build-freshness.js): `npx warden run` right after `npm ci` used to rebuild everything.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const { buildIsFresh, prepareMaySkip } = createRequire(__filename)('../../scripts/build-freshness.js') as {
  buildIsFresh: (root: string) => boolean;
  prepareMaySkip: (env: Record<string, string | undefined>, root: string) => boolean;
};

const BUILT = new Date('2026-01-02T00:00:00Z');
const BEFORE = new Date('2026-01-01T00:00:00Z');
const AFTER = new Date('2026-01-03T00:00:00Z');

let root: string;

function file(path: string, when: Date): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, 'x');
  utimesSync(full, when, when);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'warden-build-freshness-'));
  writeFileSync(join(root, 'tsconfig.build.json'), JSON.stringify({ include: ['index.ts', 'cli', 'policies'] }));
  file('index.ts', BEFORE);
  file('cli/main.ts', BEFORE);
  file('policies/packs/foundation/rules.txt', BEFORE);
  file('build/BUILD_STAMP', BUILT);
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('buildIsFresh', () => {
  it('is true when every included file is older than the stamp', () => {
    expect(buildIsFresh(root)).toBe(true);
  });

  it.each([
    ['a top-level source', 'index.ts'],
    ['a source in an included folder', 'cli/main.ts'],
    ['a new source in a nested folder', 'cli/commands/run.ts'],
    ['a data file the code reads', 'policies/packs/foundation/rules.txt'],
  ])('is false when %s is newer than the stamp', (_what, path) => {
    file(path, AFTER);
    expect(buildIsFresh(root)).toBe(false);
  });

  it('ignores Markdown and files outside the included folders', () => {
    file('cli/README.md', AFTER);
    file('test/cli/main.test.ts', AFTER);
    file('bench/index.ts', AFTER);
    expect(buildIsFresh(root)).toBe(true);
  });

  it('is false without a stamp (never built, or a build that did not finish)', () => {
    rmSync(join(root, 'build', 'BUILD_STAMP'));
    expect(buildIsFresh(root)).toBe(false);
  });

  it('is false when an included top-level file is missing', () => {
    rmSync(join(root, 'index.ts'));
    expect(buildIsFresh(root)).toBe(false);
  });
});

describe('prepareMaySkip', () => {
  it.each([
    ['npx linking the checkout', { npm_lifecycle_event: 'prepare', npm_command: 'exec' }, true],
    ['npm ci', { npm_lifecycle_event: 'prepare', npm_command: 'ci' }, false],
    ['npm install', { npm_lifecycle_event: 'prepare', npm_command: 'install' }, false],
    ['npm pack', { npm_lifecycle_event: 'prepare', npm_command: 'pack' }, false],
    ['npm run build', { npm_lifecycle_event: 'build', npm_command: 'run-script' }, false],
    ['node scripts/build.js', {}, false],
  ])('%s: skip is %s on a fresh build', (_what, env, skip) => {
    expect(prepareMaySkip(env, root)).toBe(skip);
  });

  it('npx still builds when a source changed since the build', () => {
    file('cli/main.ts', AFTER);
    expect(prepareMaySkip({ npm_lifecycle_event: 'prepare', npm_command: 'exec' }, root)).toBe(false);
  });
});
