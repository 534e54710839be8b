/**
 * How the bench's worker processes run: as users run Warden. `warden worker` runs the compiled
 * JavaScript of build/ whenever the build is as new as the sources (bin/warden.js), so the guarded
 * bench worker loads Warden from build/, and the bare worker's own code (bench-worker.ts and
 * bare-activities.ts, which the build leaves out) is compiled too, so the two sides are alike.
 * Neither process loads tsx: its loader and the source maps it turns on process-wide cost every
 * worker, and its workflow threads (which inherit execArgv), time users never pay (a CPU profile
 * read about 3.9 ms per run on the guarded workflow thread).
 *
 * When the build is older than the sources, or missing, both workers run the sources through tsx
 * instead, as bin/warden.js then does, and the bench says so (a log line, and a note under every
 * section that ran workers): the figures are then not what a user's build gives.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BenchContext } from '../bench-section';

/** The bench's own modules a worker process runs, compiled side by side (relative imports kept). */
const WORKER_MODULES = ['bench-worker', 'bare-activities'] as const;

export type WorkerRuntime =
  | {
      mode: 'compiled';
      /** The compiled bench-worker.js. */
      entry: string;
      /** Where the worker loads Warden's modules from: `<root>/build`. */
      wardenModules: string;
    }
  | {
      mode: 'tsx';
      /** bench/support/bench-worker.ts, run with `--require tsx/cjs`. */
      entry: string;
      /** The repository root (the TypeScript sources). */
      wardenModules: string;
      /** Why the build was not used. */
      reason: string;
    };

/** scripts/build-freshness.js: the test bin/warden.js makes before running build/. */
const { buildIsFresh } = createRequire(__filename)('../../scripts/build-freshness.js') as { buildIsFresh(root: string): boolean };

/**
 * Compiles the worker's own modules (bench/support/{bench-worker,bare-activities}.ts) to CommonJS
 * under `<root>/node_modules/.cache/warden-bench/<hash>/` (inside the checkout, so they resolve
 * the checkout's node_modules), keyed by their text and the TypeScript version; an existing
 * output is reused. Type stripping only: `npx tsc -p tsconfig.json` type-checks them.
 * @returns the path of the compiled bench-worker.js.
 */
export function compileWorkerEntry(root: string): string {
  const support = join(root, 'bench', 'support');
  const load = createRequire(join(root, 'package.json'));
  const typescriptVersion = (JSON.parse(readFileSync(load.resolve('typescript/package.json'), 'utf8')) as { version: string }).version;
  const hash = createHash('sha256').update(`typescript:${typescriptVersion}\n`);
  const sources = WORKER_MODULES.map((name) => {
    const text = readFileSync(join(support, `${name}.ts`), 'utf8');
    hash.update(`${name}\n${text}\n`);
    return { name, text };
  });
  const outDir = join(root, 'node_modules', '.cache', 'warden-bench', hash.digest('hex').slice(0, 16));
  const entry = join(outDir, 'bench-worker.js');
  if (existsSync(entry)) return entry;
  const ts = load('typescript') as typeof import('typescript');
  mkdirSync(outDir, { recursive: true });
  // The entry last, each file renamed into place: a half-written folder is never taken as done.
  for (const { name, text } of [...sources].reverse()) {
    const { outputText } = ts.transpileModule(text, {
      fileName: `${name}.ts`,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    });
    const file = join(outDir, `${name}.js`);
    writeFileSync(`${file}.${process.pid}.tmp`, outputText);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return entry;
}

/** How workers of a checkout at `root` run: compiled when its build is fresh, else the sources through tsx. */
export function workerRuntime(root: string): WorkerRuntime {
  if (!buildIsFresh(root)) {
    const reason = existsSync(join(root, 'build', 'BUILD_STAMP')) ? 'the sources changed since the last build (npm run build)' : 'there is no build (npm run build)';
    return { mode: 'tsx', entry: join(root, 'bench', 'support', 'bench-worker.ts'), wardenModules: root, reason };
  }
  return { mode: 'compiled', entry: compileWorkerEntry(root), wardenModules: join(root, 'build') };
}

/** The run's worker runtime, chosen (and compiled) once, logged once. */
export function benchWorkerRuntime(context: Pick<BenchContext, 'root' | 'shared' | 'log'>): WorkerRuntime {
  const existing = context.shared.get('worker-runtime') as WorkerRuntime | undefined;
  if (existing !== undefined) return existing;
  const runtime = workerRuntime(context.root);
  context.shared.set('worker-runtime', runtime);
  if (runtime.mode === 'tsx') context.log(`${runtime.reason}: the bench workers run the TypeScript sources through tsx, not the compiled build \`warden worker\` runs`);
  else context.log('the bench workers run the compiled build (build/), as `warden worker` does');
  return runtime;
}

/** Node's arguments before the worker's own: `--require tsx/cjs` only for the sources. */
export function workerExecArgv(runtime: WorkerRuntime, root: string): string[] {
  return runtime.mode === 'tsx' ? ['--require', createRequire(join(root, 'package.json')).resolve('tsx/cjs')] : [];
}

/** The line a section's notes carry about its workers. */
export function workerRuntimeNote(runtime: WorkerRuntime): string {
  return runtime.mode === 'compiled'
    ? 'workers: compiled (the guarded worker runs build/, as `warden worker` does; the bare worker\'s code is compiled too; no tsx in either process)'
    : `workers: tsx (${runtime.reason}: both workers ran the TypeScript sources through tsx, which users' compiled workers do not pay)`;
}
