/**
 * What keeps `npm run bench` within issue 17's 10 minutes without thinning its figures: the
 * default section list, sample counts sized by a budget with a floor, the run's own cost (wall
 * and CPU seconds per section, setup apart) and the `bench.total` target. No test here asserts a
 * duration of the bench: only the logic that sizes and reports it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchTotalCheck, checkTargets } from '../../bench/report';
import { costMeter, formatCost, runCost, treeCpuSeconds, type SectionCost } from '../../bench/run-cost';
import type { BenchContext } from '../../bench/bench-section';
import { defaultSections, ISSUE_17_SECTIONS, SECTIONS } from '../../bench/sections';
import { workersWarm } from '../../bench/sections/step';
import { interleaveWithin, samplesWithin } from '../../bench/stats';

const ROOT = join(__dirname, '..', '..');
/** Burns 0.3 s of the process's own CPU time, however loaded the machine. */
const BURN = 'const s = process.cpuUsage(); const used = () => { const u = process.cpuUsage(s); return u.user + u.system; }; while (used() < 300000) {}';

describe('the default run', () => {
  it("is issue 17's sections, in the order they run, and nothing else", () => {
    expect(defaultSections().map((s) => s.name)).toEqual([...ISSUE_17_SECTIONS]);
  });

  it('history, monitor, attest, workers and mcp run only when named', () => {
    const named = SECTIONS.filter((s) => !defaultSections().includes(s)).map((s) => s.name);
    expect(named.sort()).toEqual(['attest', 'history', 'mcp', 'monitor', 'workers']);
  });

  it('a section marked runByDefault: false is left out wherever it stands in the list', () => {
    const run = async () => ({ figures: [], notes: [] });
    const list = [
      { name: 'a', title: 'a', run },
      { name: 'b', title: 'b', runByDefault: false, run },
      { name: 'c', title: 'c', runByDefault: true, run },
    ];
    expect(defaultSections(list).map((s) => s.name)).toEqual(['a', 'c']);
  });

  it('--list marks the sections that run only when named, and the usage says how to do the setup alone', () => {
    const run = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), join(ROOT, 'bench', 'index.ts'), '--list'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    for (const name of ['history', 'monitor', 'attest']) expect(run.stdout).toMatch(new RegExp(`^${name} .*\\(only when named\\)$`, 'm'));
    for (const name of ISSUE_17_SECTIONS) expect(run.stdout).not.toMatch(new RegExp(`^${name} .*\\(only when named\\)$`, 'm'));
    const help = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), join(ROOT, 'bench', 'index.ts'), '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(help.stdout).toContain('--setup');
  });
});

describe('one warm-up for the shared workers', () => {
  const contextWith = (shared: Map<string, unknown>) =>
    ({ quick: true, log: () => undefined, tmpDir: ROOT, root: ROOT, stateDir: join(ROOT, '.warden-bench'), taskQueue: 'warden-bench-test', results: new Map(), shared, onClose: () => undefined }) satisfies BenchContext;

  it('the throughput section skips its warm-up task only on the very worker pair the step section ran on', async () => {
    const pair = { guarded: {}, bare: {} };
    const shared = new Map<string, unknown>([['workers', Promise.resolve(pair)]]);
    expect(await workersWarm(contextWith(shared))).toBe(false); // step did not run
    shared.set('workers-warm', pair);
    expect(await workersWarm(contextWith(shared))).toBe(true);
    // The pair was started again (a failed start): new processes, cold again.
    shared.set('workers', Promise.resolve({ guarded: {}, bare: {} }));
    expect(await workersWarm(contextWith(shared))).toBe(false);
  });
});

describe('samples sized by a budget', () => {
  it.each([
    // budget ms, per round ms, min, max, expected
    [1000, 1, 100, 2000, 1000], // as many as fit
    [10_000, 1, 100, 2000, 2000], // a quiet machine: capped at max
    [1000, 50, 100, 2000, 100], // a loaded machine: never fewer than min
    [1000, 10, 100, 100, 100], // min = max: fixed
    [999, 10, 1, 2000, 99], // whole rounds only
    [1000, 0, 100, 2000, 2000], // nothing measured: max
    [1000, Number.NaN, 100, 2000, 2000],
    [1000, Number.POSITIVE_INFINITY, 100, 2000, 2000],
  ])('budget %d ms at %d ms a round, %d..%d: %d', (budget, perRound, min, max, expected) => {
    expect(samplesWithin(budget, perRound, min, max)).toBe(expected);
  });

  it('bad bounds are a RangeError, not a silent count', () => {
    expect(() => samplesWithin(1000, 1, 0, 10)).toThrow(RangeError);
    expect(() => samplesWithin(1000, 1, 20, 10)).toThrow(RangeError);
    expect(() => samplesWithin(1000, 1, 1.5, 10)).toThrow(RangeError);
  });

  it('interleaveWithin sizes the timed rounds from the warm-up and keeps them interleaved', async () => {
    const order: string[] = [];
    let busy = 0;
    const spin = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) busy += 1;
    };
    // 2 ms a round; a 20 ms budget fits about 10 rounds; min 3, max 50.
    const { samples, n } = await interleaveWithin(3, { budgetMs: 20, min: 3, max: 50 }, { a: (i) => (order.push(`a${i}`), spin(1)), b: (i) => (order.push(`b${i}`), spin(1)) });
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(10);
    expect(samples.a).toHaveLength(n);
    expect(samples.b).toHaveLength(n);
    // Warm-up rounds 0-2, then the timed ones go on numbering, alternating which goes first.
    expect(order.slice(0, 8)).toEqual(['a0', 'b0', 'b1', 'a1', 'a2', 'b2', 'a3', 'b3']);
    expect(order).toHaveLength(2 * (3 + n));
    expect(busy).toBeGreaterThan(0);
  });

  it('interleaveWithin never goes below the floor, however slow a round', async () => {
    const { n, samples } = await interleaveWithin(1, { budgetMs: 1, min: 4, max: 100 }, { slow: () => new Promise((r) => setTimeout(r, 5)) });
    expect(n).toBe(4);
    expect(samples.slow).toHaveLength(4);
  });
});

describe("the run's own cost", () => {
  it('counts the CPU of child processes the run waited for, and of live ones', async () => {
    const before = treeCpuSeconds();
    expect(before).not.toBeNull();
    // A child that burns 0.3 s of CPU (not of wall time: the machine may be loaded) and is reaped: counted through cutime.
    spawnSync(process.execPath, ['-e', BURN]);
    const afterReaped = treeCpuSeconds() as number;
    expect(afterReaped - (before as number)).toBeGreaterThanOrEqual(0.25);
    // A live child that burns CPU then waits: counted through its own stat.
    const child = spawn(process.execPath, ['-e', `${BURN} process.stdout.write("x"); setTimeout(() => {}, 60000)`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    try {
      expect((treeCpuSeconds() as number) - afterReaped).toBeGreaterThanOrEqual(0.25);
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('a meter gives wall and CPU seconds and the load at its start', async () => {
    const stop = costMeter();
    const started = process.cpuUsage();
    for (let used = 0; used < 150_000; used = ((u) => u.user + u.system)(process.cpuUsage(started)));
    const cost = stop();
    expect(cost.wallS).toBeGreaterThanOrEqual(0.1);
    expect(cost.cpuS).toBeGreaterThanOrEqual(0.1);
    expect(cost.loadAtStart).toBeGreaterThanOrEqual(0);
  });

  it('setup is counted apart from the run, and the table shows both', () => {
    const c = (wallS: number, cpuS: number): SectionCost => ({ wallS, cpuS, loadAtStart: 1 });
    const cost = runCost(c(500, 700), { 'comparison policy engine (PyPI install)': c(200, 60) }, { step: c(40, 70), throughput: c(200, 380) });
    expect(cost).toMatchObject({ totalS: 500, totalCpuS: 700, setupS: 200, benchS: 300 });
    const table = formatCost(cost);
    expect(table).toContain('setup: comparison policy engine (PyPI install) (once)');
    expect(table).toMatch(/throughput\s+200\.0 s\s+380\.0 s/);
    expect(table).toContain('whole run 500.0 s (700.0 CPU s), of which one-time setup 200.0 s: 300.0 s without it');
    expect(formatCost(runCost(c(300, 500), {}, {}))).not.toContain('setup');
  });
});

describe('the bench.total target', () => {
  it('holds a full default run to 10 minutes, setup apart', () => {
    expect(benchTotalCheck({ benchS: 420, fullRun: true })).toMatchObject({ figure: 'bench.total', met: true, value: 420, unit: 's' });
    expect(benchTotalCheck({ benchS: 600, fullRun: true })).toMatchObject({ met: false });
    expect(benchTotalCheck({ benchS: 1662, fullRun: true })).toMatchObject({ met: false });
  });

  it('reports but does not judge a run of named sections or --quick', () => {
    expect(benchTotalCheck({ benchS: 30, fullRun: false })).toMatchObject({ met: null, value: 30, note: expect.stringContaining('full default run') });
  });

  it('is listed with the targets when the run says how long it took, and not otherwise', () => {
    expect(checkTargets(new Map(), { benchS: 400, fullRun: true }).at(-1)).toMatchObject({ figure: 'bench.total', met: true });
    expect(checkTargets(new Map()).some((t) => t.figure === 'bench.total')).toBe(false);
  });
});
