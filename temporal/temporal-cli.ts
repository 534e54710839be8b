/**
 * Finds the `temporal` CLI that runs the embedded development server, building it once from
 * the Go module proxy when the machine has none.
 *
 * Order: `TEMPORAL_CLI_PATH`, then `temporal` on PATH, then the cached build
 * `<cache>/temporal-cli-v1.5.1/temporal`, then `go install` into that cache. The build writes
 * into a temporary GOBIN and is renamed into place, so the cached path either holds a complete
 * binary or does not exist; a lock file (holder pid inside, dead holders are detected) makes
 * concurrent first runs wait for one build instead of racing several.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, accessSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { ConfigError, TemporalServerError } from '../errors';
import { acquireFileLock } from '../file-lock';
import { textTail } from '../cut-text';
import { defaultCacheDir } from '../cache-dir';

/** The newest CLI release whose go.mod has no `replace` directive, so `go install pkg@version` works. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const BUILD_HINT =
  'Set TEMPORAL_ADDRESS to use an existing Temporal server, or TEMPORAL_CLI_PATH to a temporal binary (https://docs.temporal.io/cli#install).';
const OUTPUT_TAIL_BYTES = 4000;

export type LogFn = (line: string) => void;

export interface FindOrBuildTemporalCliOptions {
  env?: NodeJS.ProcessEnv;
  /** Defaults to {@link defaultCacheDir}. */
  cacheDir?: string;
  /** Progress for humans (stderr); called rarely. */
  log?: LogFn;
  /** How long to wait for another process's build. Default 30 minutes. */
  lockTimeoutMs?: number;
}

export { defaultCacheDir };

/** Where the go-built CLI lives in `cacheDir`. */
export function cachedTemporalCliPath(cacheDir: string): string {
  return join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`, EXE);
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on `env.PATH`, like `which`. */
export function findExecutableOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

function checkCliPath(file: string): string {
  const absolute = resolve(file);
  let isFile: boolean;
  try {
    isFile = statSync(absolute).isFile();
  } catch (error) {
    throw new ConfigError('ERR_CONFIG_INVALID', `TEMPORAL_CLI_PATH: no such file ${absolute}`, { details: { variable: 'TEMPORAL_CLI_PATH', path: absolute }, cause: error });
  }
  if (!isFile) throw new ConfigError('ERR_CONFIG_INVALID', `TEMPORAL_CLI_PATH: ${absolute} is not a file`, { details: { variable: 'TEMPORAL_CLI_PATH', path: absolute } });
  try {
    accessSync(absolute, fsConstants.X_OK);
  } catch (error) {
    throw new ConfigError('ERR_CONFIG_INVALID', `TEMPORAL_CLI_PATH: ${absolute} is not executable (chmod +x it, or point at the temporal binary)`, {
      details: { variable: 'TEMPORAL_CLI_PATH', path: absolute },
      cause: error,
    });
  }
  return absolute;
}

/**
 * The path of a usable `temporal` CLI, building it into the cache on first use.
 * @throws ConfigError `ERR_CONFIG_INVALID` when `TEMPORAL_CLI_PATH` is missing or not executable.
 * @throws TemporalServerError `ERR_TEMPORAL_CLI_BUILD` when `go` is missing or the build fails.
 */
export async function findOrBuildTemporalCli(options: FindOrBuildTemporalCliOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  if (env.TEMPORAL_CLI_PATH) return checkCliPath(env.TEMPORAL_CLI_PATH);
  const onPath = findExecutableOnPath('temporal', env);
  if (onPath !== undefined) return onPath;
  const cacheDir = options.cacheDir ?? defaultCacheDir(env);
  const cached = cachedTemporalCliPath(cacheDir);
  if (isExecutableFile(cached)) return cached;
  return buildTemporalCli(cacheDir, env, options.log ?? (() => {}), options.lockTimeoutMs ?? 30 * 60_000);
}

function buildError(message: string, details: Record<string, unknown>, cause?: unknown): TemporalServerError {
  return new TemporalServerError('ERR_TEMPORAL_CLI_BUILD', `${message}\n${BUILD_HINT}`, { details, cause });
}

async function buildTemporalCli(cacheDir: string, env: NodeJS.ProcessEnv, log: LogFn, lockTimeoutMs: number): Promise<string> {
  const target = cachedTemporalCliPath(cacheDir);
  const finalDir = join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`);
  const go = findExecutableOnPath('go', env);
  if (go === undefined) {
    throw buildError(`no Temporal CLI found and cannot build one: \`go\` is not on PATH (needed once for go install ${TEMPORAL_CLI_PACKAGE}@${TEMPORAL_CLI_VERSION}).`, {
      cacheDir,
    });
  }
  await mkdir(cacheDir, { recursive: true });
  const release = await acquireFileLock(join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}.lock`), {
    timeoutMs: lockTimeoutMs,
    onWait: (holder) => log(`another process (pid ${holder ?? '?'}) is building the Temporal CLI; waiting for it`),
    timeoutError: () => buildError(`timed out waiting for another process to finish building the Temporal CLI in ${cacheDir}`, { cacheDir }),
  });
  try {
    if (isExecutableFile(target)) return target; // the process we waited for built it
    // Leftovers of builds that died halfway; nobody else can be using them while we hold the lock.
    for (const entry of await readdir(cacheDir)) {
      if (entry.startsWith(`temporal-cli-${TEMPORAL_CLI_VERSION}.tmp-`)) await rm(join(cacheDir, entry), { recursive: true, force: true });
    }
    const gobin = await mkdtemp(join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}.tmp-`));
    const startedAt = Date.now();
    log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} from the Go module proxy, first run only, takes a few minutes (into ${finalDir})`);
    const args = ['install', `${TEMPORAL_CLI_PACKAGE}@${TEMPORAL_CLI_VERSION}`];
    const result = await runCapturingTail(go, args, { cwd: cacheDir, env: { ...env, GOBIN: gobin } }, () =>
      log(`still building the Temporal CLI (${formatDuration(Date.now() - startedAt)} so far)`),
    );
    if (result.error !== undefined || result.code !== 0) {
      await rm(gobin, { recursive: true, force: true });
      const how = result.error !== undefined ? `failed to run: ${result.error.message}` : `exited with ${result.signal ?? `code ${result.code}`}`;
      throw buildError(`could not build the Temporal CLI: ${go} ${args.join(' ')} ${how}${result.tail ? `\n--- go output (tail) ---\n${result.tail}` : ''}`, {
        cacheDir,
        exitCode: result.code,
        outputTail: result.tail,
      }, result.error);
    }
    if (!isExecutableFile(join(gobin, EXE))) {
      await rm(gobin, { recursive: true, force: true });
      throw buildError(`go install finished but produced no ${EXE} in GOBIN${result.tail ? `\n--- go output (tail) ---\n${result.tail}` : ''}`, { cacheDir });
    }
    await rm(finalDir, { recursive: true, force: true });
    await rename(gobin, finalDir);
    log(`built the Temporal CLI in ${formatDuration(Date.now() - startedAt)}: ${target}`);
    return target;
  } finally {
    await release();
  }
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
  tail: string;
}

function runCapturingTail(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }, onTick: () => void): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    let tail = '';
    const keep = (chunk: Buffer): void => {
      tail = textTail(tail + chunk.toString('utf8'), OUTPUT_TAIL_BYTES);
    };
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const ticker = setInterval(onTick, 30_000);
    ticker.unref();
    let settled = false;
    const finish = (result: Omit<RunResult, 'tail'>): void => {
      if (settled) return;
      settled = true;
      clearInterval(ticker);
      resolvePromise({ ...result, tail: tail.trim() });
    };
    child.on('error', (error) => finish({ code: null, signal: null, error }));
    child.on('close', (code, signal) => finish({ code, signal }));
  });
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

// ---------------------------------------------------------------------------------------------
// Process and lock helpers shared with the embedded server manager.

