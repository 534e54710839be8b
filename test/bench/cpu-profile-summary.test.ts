/**
 * The CPU profile summary the bench's profiling runs are read with: self and inclusive time per
 * file and function, idle left out, counting from the first sample that holds a named function.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeCpuProfile, type CpuProfile } from '../../bench/support/cpu-profile-summary';

const SCRIPT = join(__dirname, '..', '..', 'bench', 'support', 'cpu-profile-summary.ts');
const dir = mkdtempSync(join(tmpdir(), 'warden-cpuprof-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });

/** root -> startup ; root -> work -> hot ; root -> (idle): samples in that order, 1 ms each but idle 5 ms. */
const synthetic: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 5] },
    { id: 2, callFrame: frame('startup', 'file:///app/boot.js') },
    { id: 3, callFrame: frame('work', 'file:///app/node_modules/@scope/pkg/lib/a.js'), children: [4] },
    { id: 4, callFrame: frame('hot', 'file:///app/src/hot.ts') },
    { id: 5, callFrame: frame('(idle)') },
  ],
  startTime: 0,
  endTime: 10_000,
  samples: [2, 2, 3, 4, 4, 5],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 5000],
};

describe('cpu-profile-summary', () => {
  it('sums self time by file and function, leaves idle out, and counts inclusive time once per stack', () => {
    const s = summarizeCpuProfile(synthetic);
    expect(s.totalMs).toBe(5);
    expect(Object.fromEntries(s.byFile)).toEqual({ '/app/boot.js': 2, 'npm:@scope/pkg': 1, '/app/src/hot.ts': 2 });
    expect(s.byFunction[0]).toEqual(['startup /app/boot.js:1', 2]);
    expect(Object.fromEntries(s.inclusive)['work npm:@scope/pkg:1']).toBe(3);
    expect(Object.fromEntries(s.inclusive)['(root) ((root)):1']).toBe(5);
  });

  it('starts counting at the first sample holding `from`, and divides by `per`', () => {
    const s = summarizeCpuProfile(synthetic, { from: 'work', per: 2 });
    expect(s.fromSec).toBeCloseTo(0.003);
    expect(s.totalMs).toBe(1.5);
    expect(s.byFile.map(([f]) => f)).not.toContain('/app/boot.js');
    expect(summarizeCpuProfile(synthetic, { from: 'never-called' }).fromSec).toBeUndefined();
  });

  it('leaves out the samples under a `skip` frame (what a task costs once), counting them apart', () => {
    const s = summarizeCpuProfile(synthetic, { skip: ['work'], per: 2 });
    // startup's 2 ms stay; work and hot (under work) are left out.
    expect(s.totalMs).toBe(1);
    expect(s.skippedMs).toBe(1.5);
    expect(s.byFile.map(([f]) => f)).toEqual(['/app/boot.js']);
    expect(s.inclusive.map(([k]) => k)).not.toContain('work npm:@scope/pkg:1');
    // A skipped frame that is itself the `from` frame: counting still starts there.
    const fromAndSkip = summarizeCpuProfile(synthetic, { from: 'work', skip: ['hot'] });
    expect(fromAndSkip.fromSec).toBeCloseTo(0.003);
    expect(fromAndSkip.totalMs).toBe(1);
    expect(fromAndSkip.skippedMs).toBe(2);
    expect(summarizeCpuProfile(synthetic).skippedMs).toBe(0);
  });

  it('reads a profile node --cpu-prof wrote, and names the function that burnt the time', () => {
    const script = join(dir, 'burn.js');
    writeFileSync(script, 'function burnCpu() { let x = 0; const end = Date.now() + 300; while (Date.now() < end) x += Math.sqrt(x + 1); return x; }\nburnCpu();\n');
    const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, script], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
    const s = summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, { from: 'burnCpu' });
    expect(s.fromSec).toBeGreaterThan(0);
    expect(s.inclusive.find(([k]) => k.startsWith('burnCpu '))?.[1]).toBeGreaterThan(100);
    const cli = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), SCRIPT, join(dir, file), '--from', 'burnCpu', '--top', '3'], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain('== inclusive time by function');
    expect(cli.stdout).toMatch(/burnCpu .*burn\.js/);
  });

  it('bad usage exits 2 with a message naming the problem', () => {
    const none = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), SCRIPT], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('usage:');
    const missing = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), SCRIPT, join(dir, 'missing.cpuprofile')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('missing.cpuprofile: not a readable CPU profile');
    for (const bad of [[], ['--top', '3'], [',work'], ['work,,hot']]) {
      const run = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), SCRIPT, join(dir, 'missing.cpuprofile'), '--skip', ...bad], { encoding: 'utf8' });
      expect(run.status, bad.join(' ')).toBe(2);
      expect(run.stderr).toContain('--skip takes function names separated by commas, none empty');
    }
  });
});
