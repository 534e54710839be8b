#!/usr/bin/env node
// Entry point of `warden`: runs the compiled CLI from build/ (made by `npm run build`, which
// `npm ci` runs through `prepare`). In a checkout whose sources changed since the last build,
// or that was never built, it runs the TypeScript sources through tsx instead (a development
// dependency), so what runs is always what the sources say.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const STAMP = join(ROOT, 'build', 'BUILD_STAMP');

/** 'build' | 'source' | 'none': what this installation can run. */
function pickEntry() {
  const isCheckout = existsSync(join(ROOT, 'cli', 'main.ts'));
  if (!isCheckout) return existsSync(STAMP) ? 'build' : 'none';
  // A checkout has scripts/ (an installed package does not): the same freshness test `prepare` uses.
  if (require('../scripts/build-freshness.js').buildIsFresh(ROOT)) return 'build';
  try {
    require.resolve('tsx/cjs');
    return 'source';
  } catch {
    return 'none';
  }
}

/**
 * WARDEN_TIMING=1: when each start-up phase ended, in ms since the process started, and the CPU
 * used so far (see cli/phase-timing.ts, whose main-thread column this leaves out: nothing but the
 * main thread runs yet).
 */
function markPhase(phase) {
  if (process.env.WARDEN_TIMING !== '1') return;
  const { user, system } = process.cpuUsage();
  process.stderr.write(`warden timing: ${performance.now().toFixed(1).padStart(8)} ms  cpu ${((user + system) / 1000).toFixed(0).padStart(6)} ms  ${phase}\n`);
}

/**
 * Compiles the build's modules (and their dependencies) with V8's cached data from the last run of
 * this build (build/cli/module-code-cache.js; WARDEN_CODE_CACHE=off turns it off): about a quarter
 * of `warden run`'s module loading. It also answers each `require` from where it led last time,
 * within this package's folder (`root`) and npm-recorded node_modules trees: about a fifth more.
 * The build's stamp is part of the key: a rebuilt or another installed Warden never uses this one's data.
 */
function installCodeCache() {
  try {
    const build = `${require('../package.json').version} ${require('node:fs').readFileSync(STAMP, 'utf8').trim()}`;
    require('../build/cli/module-code-cache.js').installModuleCodeCache({ build, role: 'cli', saveOnExit: true, root: ROOT });
  } catch {
    // No cache: the modules compile from source, as before.
  }
}

let main;
/** The CLI's own stderr writer (cli/cli-io.ts): on a terminal, controls in an error's text are shown escaped. */
let processIo;
markPhase('node started, bin/warden.js running');
const entry = pickEntry();
markPhase(`freshness check done: running ${entry}`);
if (entry === 'build') {
  installCodeCache();
  ({ main, processIo } = require('../build/cli/main.js'));
} else if (entry === 'source') {
  if (process.stderr.isTTY && existsSync(STAMP)) process.stderr.write('warden: the sources changed since the last build (npm run build); running them through tsx\n');
  // Both loaders: the CLI loads each command with a dynamic import().
  require('tsx/cjs');
  require('node:module').register('tsx/esm', { parentURL: require('node:url').pathToFileURL(__filename), data: {} });
  ({ main, processIo } = require('../cli/main.ts'));
} else {
  process.stderr.write('warden: this installation has no compiled CLI (build/cli/main.js); run `npm run build` in the package folder\n');
  process.exit(1);
}

markPhase('cli/main loaded');
process.on('exit', () => {
  const codeCache = entry === 'build' && process.env.WARDEN_TIMING === '1' ? require('../build/cli/module-code-cache.js') : undefined;
  const cache = codeCache?.moduleCodeCacheStats();
  const resolutions = codeCache?.moduleResolutionStats();
  markPhase(`process exiting${cache === undefined ? '' : ` (code cache: ${cache.fromCache} modules from the cache, ${cache.compiled} compiled; ${resolutions.fromCache} requires resolved from it)`}`);
});
/** Once the command returned, how long the process may take to end by itself before it is ended. */
const EXIT_GRACE_MS = 3000;

/**
 * The command has returned, its own clean-up included (custody ledger closed, OTLP flushed,
 * workers shut down): a handle a library left open must not keep the process alive. Seen:
 * @temporalio/worker 1.24.0 keeps its workflow threads' MessagePort after a `Worker.create` the
 * server refused, and `warden run` never exited. The timer is unref'd: a process with nothing
 * left open ends as before, at once; otherwise it is ended after the grace, once stdout and
 * stderr have flushed, with the exit code the command returned.
 */
function endOnceSettled() {
  setTimeout(() => {
    markPhase(`process still alive ${EXIT_GRACE_MS} ms after the command returned (open: ${process.getActiveResourcesInfo().join(', ')}): ending it`);
    process.stdout.write('', () => process.stderr.write('', () => process.exit()));
  }, EXIT_GRACE_MS).unref();
}

/**
 * A command whose promise never settles while nothing keeps the process alive (a call a library
 * dropped without an answer: gRPC calls carrying a 70,000-character workflow id were) would end
 * with exit 0 and no output, which a script reads as success. It ends with exit 1 and says so.
 */
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  processIo.stderr('warden: the command ended without an answer (a call it waited on was dropped); what it was asked to do may not have happened\n');
  process.exitCode = 1;
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
    endOnceSettled();
  },
  (error) => {
    settled = true;
    processIo.stderr(`warden: ${error && error.stack ? error.stack : String(error)}\n`);
    process.exitCode = 1;
    endOnceSettled();
  },
);
