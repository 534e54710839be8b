/**
 * The bench's worker processes run as users run Warden (bench/support/worker-runtime.ts): with a
 * fresh build, the guarded worker is Warden's compiled build/ (what `warden worker` runs) and the
 * bare worker is compiled too, with no tsx in either process (its loader and the source maps it
 * turns on cost every worker and its workflow threads, which users never pay). With a stale or
 * missing build both run the sources through tsx, and the bench says why.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchContext } from '../../bench/bench-section';
import { processTree, runBareTask, runGuardedTask, startBenchWorker, type TemporalBench } from '../../bench/support/temporal-bench';
import { benchWorkerRuntime, workerRuntime, workerRuntimeNote } from '../../bench/support/worker-runtime';
import { connectClient } from '../../temporal/connect';
import { testTemporalConfig } from '../support/temporal';

const ROOT = join(__dirname, '..', '..');
const { buildIsFresh } = createRequire(__filename)('../../scripts/build-freshness.js') as { buildIsFresh(root: string): boolean };

describe('how the bench workers run', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'warden-bench-workers-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A checkout with one source file and, when `built` says so, a build stamped before or after it. */
  function checkout(name: string, built: 'none' | 'stale'): string {
    const root = join(scratch, name);
    mkdirSync(join(root, 'worker'), { recursive: true });
    writeFileSync(join(root, 'tsconfig.build.json'), JSON.stringify({ include: ['worker'] }));
    writeFileSync(join(root, 'worker', 'index.ts'), 'export {};\n');
    if (built === 'stale') {
      mkdirSync(join(root, 'build'));
      writeFileSync(join(root, 'build', 'BUILD_STAMP'), 'then\n');
      const before = new Date(Date.now() - 60_000);
      utimesSync(join(root, 'build', 'BUILD_STAMP'), before, before);
    }
    return root;
  }

  it.each([
    ['no build', 'none', 'there is no build (npm run build)'],
    ['a build older than the sources', 'stale', 'the sources changed since the last build (npm run build)'],
  ] as const)('with %s, both workers run the sources through tsx and the notes say why', (_case, built, reason) => {
    const root = checkout(built, built);
    const runtime = workerRuntime(root);
    expect(runtime).toEqual({ mode: 'tsx', entry: join(root, 'bench', 'support', 'bench-worker.ts'), wardenModules: root, reason });
    expect(workerRuntimeNote(runtime)).toBe(`workers: tsx (${reason}: both workers ran the TypeScript sources through tsx, which users' compiled workers do not pay)`);
    const logged: string[] = [];
    const shared = new Map<string, unknown>();
    expect(benchWorkerRuntime({ root, shared, log: (line) => logged.push(line) })).toEqual(runtime);
    expect(benchWorkerRuntime({ root, shared, log: (line) => logged.push(line) })).toBe(shared.get('worker-runtime'));
    expect(logged).toEqual([`${reason}: the bench workers run the TypeScript sources through tsx, not the compiled build \`warden worker\` runs`]);
  });
});

// Needs `npm run build` after the last source change (as `warden worker` itself would run the
// sources otherwise); the cases above hold the stale side.
describe.runIf(buildIsFresh(ROOT))('with a fresh build', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-bench-workers-state-'));
  const closers: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('both bench workers run compiled JavaScript with no tsx, the guarded one from build/ as `warden worker` does, and both run their tasks', async () => {
    const config = testTemporalConfig();
    const { client, connection } = await connectClient(config);
    closers.push(() => connection.close());
    const shared = new Map<string, unknown>([['temporal', Promise.resolve({ address: config.address, namespace: config.namespace, client } satisfies TemporalBench)]]);
    const context: BenchContext = {
      quick: true,
      log: () => undefined,
      tmpDir: stateDir,
      root: ROOT,
      stateDir,
      taskQueue: 'warden-bench-test-unused',
      results: new Map(),
      shared,
      onClose: (close) => closers.push(close),
    };
    const guarded = await startBenchWorker(context, 'guarded');
    const bare = await startBenchWorker(context, 'bare');
    const commandOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
    for (const worker of [guarded, bare]) {
      // The process as the kernel started it: node, its arguments, the entry file.
      const command = commandOf(worker.pid);
      expect(command.filter((arg) => /tsx/.test(arg)), `${worker.kind}: ${command.join(' ')}`).toEqual([]);
      expect(command[1], worker.kind).toMatch(/\.js$/);
      expect(worker.runtime).toBe('compiled');
      // What the process says of itself: the SDK's workflow threads inherit execArgv.
      expect(worker.ready, worker.kind).toMatchObject({ ready: true, tsx: false, sourceMaps: false });
      expect(worker.ready.execArgv.filter((arg) => /tsx/.test(arg))).toEqual([]);
      expect(worker.ready.wardenWorkerModule).toBe(join(ROOT, 'build', 'worker', 'create-warden-worker.js'));
    }
    expect(workerRuntimeNote(benchWorkerRuntime(context))).toMatch(/^workers: compiled /);
    // Compiled, they still do the work the sections time.
    expect((await runGuardedTask(context, guarded, 2)).toolCalls).toBe(2);
    expect((await runBareTask(context, bare, 2)).toolCalls).toBe(2);
    // The guarded worker's sandbox host (it ran the tool) is the build's too.
    const hosts = (processTree().get(guarded.pid) ?? []).map(commandOf);
    expect(hosts.length).toBeGreaterThan(0);
    for (const host of hosts) expect(host.filter((arg) => /tsx|\.ts$/.test(arg)), host.join(' ')).toEqual([]);
  }, 300_000);
});
