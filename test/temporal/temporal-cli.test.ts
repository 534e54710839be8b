/**
 * Finding the temporal CLI: TEMPORAL_CLI_PATH, PATH, the cache, then a one-time `go install`.
 * The build path is exercised with a fake `go` (a shell script) so these tests run in
 * milliseconds; the real build is opt-in with WARDEN_TEST_REAL_GO_BUILD=1 (minutes).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, TemporalServerError } from '../../errors';
import { cachedTemporalCliPath, defaultCacheDir, findOrBuildTemporalCli, TEMPORAL_CLI_VERSION } from '../../temporal/temporal-cli';

const created: string[] = [];
afterAll(() => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `warden-cli-${prefix}-`));
  created.push(dir);
  return dir;
}

function executable(file: string, body: string): string {
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** A `go` that records its invocations and, if `ok`, "builds" $GOBIN/temporal after `delay` seconds. */
function fakeGo(ok: boolean, delaySeconds = 0): { binDir: string; calls: string } {
  const binDir = tempDir('gobin');
  const calls = join(binDir, 'calls.log');
  executable(
    join(binDir, 'go'),
    ok
      ? `echo "$@ GOBIN=$GOBIN" >> ${calls}\nsleep ${delaySeconds}\necho 'go: downloading github.com/temporalio/cli v1.5.1' >&2\nprintf '#!/bin/sh\\necho fake temporal\\n' > "$GOBIN/temporal"\nchmod +x "$GOBIN/temporal"`
      : `echo "$@" >> ${calls}\necho 'go: downloading github.com/temporalio/cli v1.5.1' >&2\necho 'go: github.com/temporalio/cli@v1.5.1: module lookup disabled by GOPROXY=off' >&2\nexit 1`,
  );
  return { binDir, calls };
}

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a failure');
}

const SYSTEM_PATH = '/usr/bin:/bin';

describe('TEMPORAL_CLI_PATH', () => {
  it('is used as is when it is an executable file', async () => {
    const cli = executable(join(tempDir('path'), 'my-temporal'), 'exit 0');
    await expect(findOrBuildTemporalCli({ env: { TEMPORAL_CLI_PATH: cli, PATH: SYSTEM_PATH } })).resolves.toBe(cli);
  });

  it('a non-executable file is ERR_CONFIG_INVALID saying so', async () => {
    const file = join(tempDir('noexec'), 'temporal');
    writeFileSync(file, 'not a program');
    const error = await failure(findOrBuildTemporalCli({ env: { TEMPORAL_CLI_PATH: file, PATH: SYSTEM_PATH } }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('ERR_CONFIG_INVALID');
    expect(error.message).toBe(`TEMPORAL_CLI_PATH: ${file} is not executable (chmod +x it, or point at the temporal binary)`);
  });

  it('a missing file or a directory is ERR_CONFIG_INVALID naming the variable', async () => {
    const dir = tempDir('missing');
    await expect(findOrBuildTemporalCli({ env: { TEMPORAL_CLI_PATH: join(dir, 'nope') } })).rejects.toThrow(/^TEMPORAL_CLI_PATH: no such file .*nope$/);
    await expect(findOrBuildTemporalCli({ env: { TEMPORAL_CLI_PATH: dir } })).rejects.toThrow(/^TEMPORAL_CLI_PATH: .* is not a file$/);
  });
});

describe('lookup order', () => {
  it('takes `temporal` from PATH before the cache', async () => {
    const binDir = tempDir('onpath');
    const cli = executable(join(binDir, 'temporal'), 'exit 0');
    const cacheDir = tempDir('cache');
    mkdirSync(join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`));
    executable(cachedTemporalCliPath(cacheDir), 'exit 0');
    await expect(findOrBuildTemporalCli({ env: { PATH: `${binDir}:${SYSTEM_PATH}` }, cacheDir })).resolves.toBe(cli);
  });

  it('skips non-executable `temporal` files on PATH', async () => {
    const binDir = tempDir('onpath-noexec');
    writeFileSync(join(binDir, 'temporal'), 'x');
    const cacheDir = tempDir('cache');
    mkdirSync(join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`));
    const cached = executable(cachedTemporalCliPath(cacheDir), 'exit 0');
    await expect(findOrBuildTemporalCli({ env: { PATH: binDir }, cacheDir })).resolves.toBe(cached);
  });

  it('uses the cached build without running go', async () => {
    const { binDir, calls } = fakeGo(true);
    const cacheDir = tempDir('cache');
    mkdirSync(join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`));
    const cached = executable(cachedTemporalCliPath(cacheDir), 'exit 0');
    await expect(findOrBuildTemporalCli({ env: { PATH: `${binDir}:${SYSTEM_PATH}` }, cacheDir })).resolves.toBe(cached);
    expect(existsSync(calls)).toBe(false);
  });

  it('cache folder: WARDEN_CACHE_DIR, then $XDG_CACHE_HOME/warden, then ~/.cache/warden', () => {
    expect(defaultCacheDir({ WARDEN_CACHE_DIR: '/var/cache/w', XDG_CACHE_HOME: '/x' })).toBe('/var/cache/w');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/warden');
    expect(defaultCacheDir({ HOME: '/home/ann' })).toBe('/home/ann/.cache/warden');
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'warden'));
  });
});

describe('building with go', () => {
  it('without go: ERR_TEMPORAL_CLI_BUILD with the way out', async () => {
    const error = await failure(findOrBuildTemporalCli({ env: { PATH: tempDir('empty') }, cacheDir: tempDir('cache') }));
    expect(error).toBeInstanceOf(TemporalServerError);
    expect(error.code).toBe('ERR_TEMPORAL_CLI_BUILD');
    expect(error.message).toMatch(/`go` is not on PATH/);
    expect(error.message).toMatch(/TEMPORAL_ADDRESS/);
    expect(error.message).toMatch(/TEMPORAL_CLI_PATH/);
  });

  it('a failing build: ERR_TEMPORAL_CLI_BUILD with the tail of go output, nothing left in the cache', async () => {
    const { binDir } = fakeGo(false);
    const cacheDir = tempDir('cache');
    const error = await failure(findOrBuildTemporalCli({ env: { PATH: `${binDir}:${SYSTEM_PATH}` }, cacheDir }));
    expect(error.code).toBe('ERR_TEMPORAL_CLI_BUILD');
    expect(error.message).toMatch(/install github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1 exited with code 1/);
    expect(error.message).toMatch(/module lookup disabled by GOPROXY=off/);
    expect(error.message).toMatch(/Set TEMPORAL_ADDRESS .* or TEMPORAL_CLI_PATH/);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('builds once into a temporary GOBIN, renames it into the cache, then reuses it', async () => {
    const { binDir, calls } = fakeGo(true);
    const cacheDir = tempDir('cache');
    const logs: string[] = [];
    const env = { PATH: `${binDir}:${SYSTEM_PATH}` };
    const cli = await findOrBuildTemporalCli({ env, cacheDir, log: (line) => logs.push(line) });
    expect(cli).toBe(join(cacheDir, 'temporal-cli-v1.5.1', 'temporal'));
    expect(spawnSync(cli).stdout.toString()).toBe('fake temporal\n');
    const invocation = readFileSync(calls, 'utf8');
    expect(invocation).toMatch(/^install github\.com\/temporalio\/cli\/cmd\/temporal@v1\.5\.1 GOBIN=.*temporal-cli-v1\.5\.1\.tmp-/);
    expect(logs[0]).toMatch(/building the Temporal CLI v1\.5\.1 from the Go module proxy, first run only, takes a few minutes/);
    expect(logs.at(-1)).toMatch(/built the Temporal CLI in \d+s/);
    expect(readdirSync(cacheDir).sort()).toEqual(['temporal-cli-v1.5.1']); // no temp dir, no lock left

    await expect(findOrBuildTemporalCli({ env, cacheDir })).resolves.toBe(cli);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('concurrent first runs build once: the others wait for the lock', async () => {
    const { binDir, calls } = fakeGo(true, 1);
    const cacheDir = tempDir('cache');
    const env = { PATH: `${binDir}:${SYSTEM_PATH}` };
    const logs: string[] = [];
    const paths = await Promise.all([1, 2, 3].map(() => findOrBuildTemporalCli({ env, cacheDir, log: (line) => logs.push(line) })));
    expect(new Set(paths).size).toBe(1);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(logs.filter((line) => /is building the Temporal CLI; waiting/.test(line))).toHaveLength(2);
  });

  it('a lock left by a dead process is taken over, and half-built temp folders are cleared', async () => {
    const { binDir } = fakeGo(true);
    const cacheDir = tempDir('cache');
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    writeFileSync(join(cacheDir, 'temporal-cli-v1.5.1.lock'), JSON.stringify({ pid: Number(dead), token: 'old', createdAt: new Date().toISOString() }));
    mkdirSync(join(cacheDir, 'temporal-cli-v1.5.1.tmp-crashed'));
    const cli = await findOrBuildTemporalCli({ env: { PATH: `${binDir}:${SYSTEM_PATH}` }, cacheDir, lockTimeoutMs: 60_000 });
    expect(cli).toBe(cachedTemporalCliPath(cacheDir));
    expect(readdirSync(cacheDir)).toEqual(['temporal-cli-v1.5.1']);
  });

  it('a lock held by a live process times out with ERR_TEMPORAL_CLI_BUILD', async () => {
    const { binDir } = fakeGo(true);
    const cacheDir = tempDir('cache');
    writeFileSync(join(cacheDir, 'temporal-cli-v1.5.1.lock'), JSON.stringify({ pid: process.pid, token: 'other', createdAt: new Date().toISOString() }));
    const error = await failure(findOrBuildTemporalCli({ env: { PATH: `${binDir}:${SYSTEM_PATH}` }, cacheDir, lockTimeoutMs: 300 }));
    expect(error.code).toBe('ERR_TEMPORAL_CLI_BUILD');
    expect(error.message).toMatch(/timed out waiting for another process/);
  });

  it.runIf(process.env.WARDEN_TEST_REAL_GO_BUILD === '1')(
    'really builds the CLI from the Go module proxy',
    async () => {
      const cacheDir = tempDir('real');
      const cli = await findOrBuildTemporalCli({ env: { ...process.env, TEMPORAL_CLI_PATH: '' }, cacheDir, log: (line) => process.stderr.write(`${line}\n`) });
      expect(spawnSync(cli, ['--version']).stdout.toString()).toMatch(/^temporal version/);
    },
    900_000,
  );
});
