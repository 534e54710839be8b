/**
 * The bench suite's own logic (not its figures: no test here asserts a duration): the command
 * line, the target checks of issue 17, the model-turn distribution drawn from its data file.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { figure, single, type BenchContext, type SectionResult } from '../../bench/bench-section';
import { checkTargets, formatValue } from '../../bench/report';
import { drawTurns } from '../../bench/sections/model-turn-share';
import { SECTIONS } from '../../bench/sections';
import { benchWorkers } from '../../bench/support/bench-workers';
import { interleaveSync, percentile, summarize } from '../../bench/stats';

const ROOT = join(__dirname, '..', '..');

function bench(...args: string[]) {
  return spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), join(ROOT, 'bench', 'index.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('npm run bench: command line', () => {
  it('an unknown section is a usage error (exit 2) naming it, and nothing runs', () => {
    const run = bench('step', 'no-such-section');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown section "no-such-section"');
    expect(run.stderr).toContain('Sections (default: all but those marked *');
    expect(run.stderr).not.toContain('bench: step:');
  });

  it('an unknown option is a usage error (exit 2)', () => {
    const run = bench('--fast');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("Unknown option '--fast'");
  });

  it('--list names every section with what it compares', () => {
    const run = bench('--list');
    expect(run.status).toBe(0);
    for (const section of SECTIONS) expect(run.stdout).toContain(section.name);
    expect(SECTIONS.map((s) => s.name)).toEqual(['step', 'throughput', 'history', 'policy', 'sandbox', 'credential', 'custody', 'sql', 'startup', 'model-turn-share', 'workers', 'mcp', 'monitor', 'attest']);
    expect(run.stdout).toMatch(/workers .*\(only when named\)/);
    expect(run.stdout).toMatch(/mcp .*\(only when named\)/);
  });
});

describe('shared bench workers', () => {
  it('a pair that failed to start is started again by the next section, not failed from memory', async () => {
    // The workers start on the shared Temporal server; a server that could not be reached here
    // stands for any start-up failure (a sandbox host slow to boot on a loaded machine).
    const shared = new Map<string, unknown>();
    const context = { quick: true, log: () => undefined, tmpDir: ROOT, root: ROOT, stateDir: join(ROOT, '.warden-bench'), taskQueue: 'warden-bench-test', results: new Map(), shared, onClose: () => undefined } satisfies BenchContext;
    shared.set('temporal', Promise.reject(new Error('first start failed')));
    await expect(benchWorkers(context)).rejects.toThrow('first start failed');
    expect(shared.has('workers')).toBe(false);
    shared.set('temporal', Promise.reject(new Error('second start failed')));
    await expect(benchWorkers(context)).rejects.toThrow('second start failed');
  });
});

function results(figures: SectionResult['figures']): Map<string, SectionResult> {
  return new Map([['any', { figures, notes: [] }]]);
}

describe('targets of issue 17', () => {
  const summary = (median: number) => ({ n: 10, median, p99: median * 2, min: median, max: median * 2 });

  it('each target reads its figure: met, missed, or not measured', () => {
    const checks = checkTargets(
      results([
        figure('step.ratio', 'step', summary(110), { baseline: { label: 'bare', summary: summary(100) } }),
        figure('throughput.ratio', 'tp', summary(7), { unit: 'calls/s', baseline: { label: 'bare', summary: summary(10) } }),
        figure('sandbox.call', 'sandbox', summary(0.8)),
        figure('custody.added', 'custody', single(0.25)),
        figure('startup.cli', 'help', summary(250)),
        // 1.5 s added to a 1 s task: missed (the target is what `warden run` adds, not its total).
        figure('startup.run', 'run', summary(2500), { baseline: { label: 'running worker', summary: summary(1000) } }),
      ]),
    );
    const byTarget = Object.fromEntries(checks.map((c) => [c.target.startsWith('`') ? c.figure : c.target.split(' ')[0] + (c.target.includes('faster') ? ' faster' : ''), c.met]));
    expect(byTarget).toEqual({
      'step.ratio': true,
      'throughput.ratio': false,
      policy: null,
      'policy faster': null,
      sandbox: true,
      custody: false,
      'startup.cli': true,
      'startup.run': false,
      'startup.run.standalone': null,
    });
  });

  it('policy must beat the comparison engine only when the comparison engine ran', () => {
    const vsToolkit = figure('policy.decide.1000', 'decide', summary(0.015), { baseline: { label: 'Agent Governance Toolkit 5.0.0 PolicyEvaluator', summary: summary(0.3) } });
    const vsCedar = figure('policy.decide.1000', 'decide', summary(0.015), { baseline: { label: 'cedar-wasm statefulIsAuthorized (direct)', summary: summary(0.01) } });
    const faster = (f: typeof vsToolkit) => checkTargets(results([f])).find((c) => c.target.includes('faster'));
    expect(faster(vsToolkit)).toMatchObject({ met: true });
    expect(faster(vsCedar)).toMatchObject({ met: null, note: 'the comparison engine did not run' });
    expect(checkTargets(results([vsToolkit])).find((c) => c.target.includes('20 µs'))).toMatchObject({ met: true, value: 0.015 });
  });

  it('a target whose section failed or skipped says so, not "not measured"', () => {
    const sections = new Map<string, SectionResult>([
      ['step', { figures: [], notes: [], skipped: 'failed: the guarded bench worker exited (code 1) before it polled' }],
      ['sandbox', { figures: [], notes: [], skipped: 'no isolated-vm here' }],
    ]);
    const checks = checkTargets(sections);
    expect(checks.find((c) => c.figure === 'step.ratio')).toMatchObject({ met: null, note: 'the step section failed: the guarded bench worker exited (code 1) before it polled' });
    expect(checks.find((c) => c.figure === 'sandbox.call')).toMatchObject({ met: null, note: 'the sandbox section skipped: no isolated-vm here' });
    expect(checks.find((c) => c.figure === 'custody.added')).toMatchObject({ met: null, note: 'not measured in this run' });
  });

  it('a figure with a baseline carries the ratio of the medians', () => {
    const f = figure('x.y', 'x', summary(3), { baseline: { label: 'b', summary: summary(2) } });
    expect(f.ratio).toBe(1.5);
    expect(f.baseline).toMatchObject({ median: 2, p99: 4, n: 10 });
  });

  it('times print in the unit that reads best', () => {
    expect(formatValue(0.0153, 'ms')).toBe('15.3 µs');
    expect(formatValue(0.0042, 'ms')).toBe('4.20 µs');
    expect(formatValue(0.42, 'ms')).toBe('420.0 µs');
    expect(formatValue(12.345, 'ms')).toBe('12.35 ms');
    expect(formatValue(1234.5, 'ms')).toBe('1235 ms');
    expect(formatValue(33.33, 'calls/s')).toBe('33.3/s');
  });
});

describe('statistics', () => {
  it('percentiles are nearest-rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(summarize([3, 1, 2])).toMatchObject({ n: 3, median: 2, min: 1, max: 3 });
  });

  it('interleaving alternates the order each round and keeps only timed rounds', () => {
    const order: string[] = [];
    const out = interleaveSync(2, 3, { a: (i) => order.push(`a${i}`), b: (i) => order.push(`b${i}`) });
    expect(order).toEqual(['a0', 'b0', 'b1', 'a1', 'a2', 'b2', 'b3', 'a3', 'a4', 'b4']);
    expect(out.a).toHaveLength(3);
    expect(out.b).toHaveLength(3);
  });
});

describe('model turns drawn from the recorded latencies', () => {
  const data = JSON.parse(readFileSync(join(ROOT, 'bench', 'data', 'llm-turn-latency.json'), 'utf8'));
  const turns = drawTurns(data);

  it('the data file names its source', () => {
    expect(data.sources[0].url).toMatch(/^https:\/\//);
    expect(data.method).toContain('interpolation');
  });

  it('100 turns per model, all within the 0.5-5 s range', () => {
    expect(turns).toHaveLength(100 * Object.keys(data.percentiles).length);
    expect(Math.min(...turns)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...turns)).toBeLessThanOrEqual(5000);
  });

  it('the draw keeps the published percentiles', () => {
    const first = turns.slice(0, 100).sort((a, b) => a - b);
    const published = data.percentiles['gpt-4o'];
    expect(percentile(first, 50)).toBeCloseTo(published['50'], -2);
    expect(percentile(first, 90)).toBeCloseTo(published['90'], -2);
  });
});
