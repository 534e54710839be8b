/**
 * The environment variables a user sets are discoverable from the command line: `warden --help`
 * lists every one the CLI reads that README documents (it listed three, not the ports), one line
 * each, and `warden server --help` the server's (ports, state folder). `warden server stop` on a
 * state folder that started nothing says when a server it did not start holds the port (a
 * newcomer's test run reused one, and `WARDEN_STATE_DIR=.warden-test … server stop` found nothing).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { ENVIRONMENT_VARIABLES } from '../../cli/environment-variables';
import { defaultCacheDir } from '../../cache-dir';
import { main, overview } from '../../cli/main';
import { REPO_ROOT } from '../support/warden-test-env';
import { freePort } from '../temporal/ports';

const VARIABLE = /\b(?:WARDEN|TEMPORAL)_[A-Z0-9_]*[A-Z0-9]\b/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(?:ts|js|mjs|cjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The variables named in the CLI's own code (cli/, temporal/, worker/, state-dir.ts). */
function readByCli(): Set<string> {
  const files = [...['cli', 'temporal', 'worker'].flatMap((d) => sourceFiles(join(REPO_ROOT, d))), join(REPO_ROOT, 'state-dir.ts')];
  return new Set(files.flatMap((file) => readFileSync(file, 'utf8').match(VARIABLE) ?? []));
}

/** Every file of Warden's runtime: each top-level folder but tests, bench, examples, docs and deploy files, the top-level modules and bin/warden.js (environment-variables.ts itself left out). */
function runtimeFiles(): string[] {
  const dirs = readdirSync(REPO_ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !['node_modules', 'build', 'test', 'bench', 'examples', 'docs', 'deploy'].includes(d.name) && !d.name.startsWith('.'))
    .map((d) => join(REPO_ROOT, d.name));
  const topLevel = readdirSync(REPO_ROOT).filter((name) => name.endsWith('.ts')).map((name) => join(REPO_ROOT, name));
  return [...dirs.flatMap(sourceFiles), ...topLevel, join(REPO_ROOT, 'bin', 'warden.js')].filter((file) => !file.endsWith('environment-variables.ts'));
}

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const inReadme = new Set(README.match(VARIABLE) ?? []);
/** The README's table of variables (rows starting with a variable in backticks). */
const readmeTable = new Set(README.split('\n').filter((line) => /^\| `(?:WARDEN|TEMPORAL)_/.test(line)).flatMap((line) => line.split(' | ')[0]!.match(VARIABLE) ?? []));

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The variable names `text` lists one per line under `Environment:`. */
function listed(text: string): string[] {
  const after = text.slice(text.indexOf('\nEnvironment:\n'));
  return [...after.matchAll(/^ {2}((?:WARDEN|TEMPORAL|OTEL)_[A-Z0-9_]+) {2,}\S/gm)].map((m) => m[1]!);
}

describe('warden --help lists the environment', () => {
  it('every variable the CLI reads that README documents, and every row of README\'s table, one line each', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toBe(overview());
    const shown = listed(stdout);
    expect(new Set(shown).size, 'each once').toBe(shown.length);
    expect(shown).toEqual(ENVIRONMENT_VARIABLES.map((v) => v.name));
    expect(stdout.trimEnd().split('\nEnvironment:\n')[1]!.split('\n')).toHaveLength(ENVIRONMENT_VARIABLES.length);
    const documentedAndRead = [...readByCli()].filter((v) => inReadme.has(v));
    expect(documentedAndRead).toEqual(expect.arrayContaining(['WARDEN_TEMPORAL_PORT', 'WARDEN_TEMPORAL_UI_PORT', 'WARDEN_STATE_DIR', 'TEMPORAL_ADDRESS']));
    expect(documentedAndRead.filter((v) => !shown.includes(v)), 'read by the CLI, documented, not in --help').toEqual([]);
    expect(readmeTable.size).toBeGreaterThan(10);
    expect([...readmeTable].filter((v) => !shown.includes(v)), "in README's table, not in --help").toEqual([]);
  });

  it('lists every variable the runtime reads from an environment, outside the CLI too; only what Warden sets for its own children is left out', () => {
    // A read is `env.NAME`, `env?.NAME`, `env['NAME']` or a quoted 'NAME' (constants such as
    // APPROVAL_WEBHOOK_ENV); identifiers that merely start with WARDEN_ (WARDEN_ATTR) are not reads.
    const READ = /(?:\benv\??\.|\benv\[')((?:WARDEN|TEMPORAL|OTEL)_[A-Z0-9_]*[A-Z0-9])\b|'((?:WARDEN|TEMPORAL)_[A-Z0-9_]*[A-Z0-9])'/g;
    const files = runtimeFiles();
    const reads = new Map<string, string>();
    for (const file of files) for (const m of readFileSync(file, 'utf8').matchAll(READ)) reads.set((m[1] ?? m[2])!, file.slice(REPO_ROOT.length + 1));
    /** Set by Warden for its own child processes or its build, never by a user, each with why. */
    const setByWarden: Record<string, string> = {
      WARDEN_SANDBOX_DATABASE_URL: 'the worker hands the sandbox host its database URL',
      WARDEN_SANDBOX_IDENTITY_DIR: "the worker hands the sandbox host its identity folder",
      WARDEN_SANDBOX_JWKS_FILE: "the worker hands the sandbox host its key set",
      WARDEN_SANDBOX_NOTICE_FD: "the sandbox client hands its host the descriptor of the reached-notice pipe",
      WARDEN_PARENT_CODE_CACHE: "a forking process hands its child its code cache's folder",
      WARDEN_BUILD_QUIET: 'npm run build, for scripts and CI',
    };
    const shown = new Set(ENVIRONMENT_VARIABLES.map((v) => v.name));
    const otelInReadme = new Set(README.match(/\bOTEL_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []);
    expect(reads.size, 'the scan finds reads').toBeGreaterThan(30);
    expect(reads.get('WARDEN_APPROVAL_WEBHOOK'), 'a read outside cli/ is found').toBe('activities/notify-approval.ts');
    const unlisted = [...reads].filter(([name]) => !shown.has(name) && !(name in setByWarden) && !(name.startsWith('OTEL_') && otelInReadme.has('OTEL_EXPORTER_OTLP_ENDPOINT') && shown.has('OTEL_EXPORTER_OTLP_ENDPOINT')));
    expect(unlisted.map(([name, file]) => `${name} (${file})`), 'read, and neither in --help nor set by Warden').toEqual([]);
    const readmeRows = new Set([...readmeTable, 'TEMPORAL_ADDRESS']);
    expect([...shown].filter((name) => name.startsWith('WARDEN_') && !readmeRows.has(name)), "in --help, not in README's table").toEqual([]);
  });

  it('lists nothing Warden does not read', () => {
    const everywhere = new Set(runtimeFiles().flatMap((file) => readFileSync(file, 'utf8').match(/\b(?:WARDEN|TEMPORAL|OTEL)_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []));
    expect(ENVIRONMENT_VARIABLES.map((v) => v.name).filter((name) => !everywhere.has(name))).toEqual([]);
  });

  it('warden server --help lists the ports and the state folder', async () => {
    const { code, stdout } = await cli(['server', '--help']);
    expect(code).toBe(0);
    expect(listed(stdout)).toEqual(expect.arrayContaining(['WARDEN_TEMPORAL_PORT', 'WARDEN_TEMPORAL_UI_PORT', 'WARDEN_TEMPORAL_HTTP_PORT', 'WARDEN_STATE_DIR', 'TEMPORAL_ADDRESS']));
    expect(stdout).toContain('stopped with that folder\'s WARDEN_STATE_DIR');
  });
});

describe('warden server stop on a state folder that started nothing', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  });

  it.each([
    ['something listens on the port', true],
    ['nothing listens on the port', false],
  ])('%s', async (_what, listening) => {
    const [port, uiPort] = [await freePort(), await freePort()];
    if (listening) {
      const server = createServer((socket) => socket.destroy());
      servers.push(server);
      await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
    }
    const stateDir = await mkdtemp(join(tmpdir(), 'warden-server-stop-'));
    const { code, stdout } = await cli(['server', 'stop'], { WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: String(port), WARDEN_TEMPORAL_UI_PORT: String(uiPort) });
    expect(code).toBe(0);
    expect(stdout).toContain(`no embedded Temporal server recorded under ${stateDir}`);
    const hint = `a server is listening on 127.0.0.1:${port}, but this state folder did not start it: stop it with the WARDEN_STATE_DIR it was started with`;
    if (listening) expect(stdout).toContain(hint);
    else expect(stdout).not.toContain('is listening');
  });

  it('still stops (exit 0, no hint) when the port variables are bad', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'warden-server-stop-'));
    const { code, stdout } = await cli(['server', 'stop'], { WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: 'seventy' });
    expect(code).toBe(0);
    expect(stdout).toBe(`no embedded Temporal server recorded under ${stateDir}\n`);
  });
});

it("`warden --help` gives the cache folder's default as the code finds it: XDG_CACHE_HOME first, then ~/.cache", () => {
  const cache = ENVIRONMENT_VARIABLES.find((v) => v.name === 'WARDEN_CACHE_DIR');
  expect(cache?.what).toContain('$XDG_CACHE_HOME/warden');
  expect(cache?.what).toContain('~/.cache/warden');
  // What it names, cache-dir.ts finds.
  expect(defaultCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe('/x/cache/warden');
  expect(defaultCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.cache/warden');
  // The MCP packages folder follows the cache folder, wherever it is.
  expect(ENVIRONMENT_VARIABLES.find((v) => v.name === 'WARDEN_MCP_PACKAGES')?.what).toContain('<WARDEN_CACHE_DIR>/mcp-packages');
});
