/**
 * What a bench run itself costs: wall time and CPU seconds per section and for the whole run, so
 * that a run on a busy shared machine still says what it would take on a quiet one (CPU seconds do
 * not grow with other processes' load; wall time does). Issue 17 asks for the whole default run in
 * under 10 minutes from a fresh clone after the README's setup; the one-time setup a first run
 * does (the comparison engine's PyPI install) is timed apart.
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { processTree } from './support/temporal-bench';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) of `pid` and every live descendant, each with the children it has
 * already reaped (stat's cutime/cstime): the bench process, its worker processes, their sandbox
 * hosts, the embedded Temporal server (a child even when detached), and the processes the
 * sections ran and waited for (`warden run`, `node -e`, Python). A process reparented away
 * from the tree (a double fork) is not counted. null without a readable /proc.
 */
export function treeCpuSeconds(pid: number = process.pid): number | null {
  const tree = processTree();
  const ticks = (p: number): number | null => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      return null;
    }
  };
  const own = ticks(pid);
  if (own === null) return null;
  const descendants = (p: number): number => (tree.get(p) ?? []).reduce((sum, child) => sum + (ticks(child) ?? 0) + descendants(child), 0);
  return (own + descendants(pid)) / USER_HZ;
}

/** One section's (or the setup's) cost in a run. */
export interface SectionCost {
  /** Wall seconds, 0.1 s resolution. */
  wallS: number;
  /** CPU seconds of the bench's whole process tree over the section (null without /proc). */
  cpuS: number | null;
  /** The one-minute load average when the section started. */
  loadAtStart: number;
}

/** Measures the cost of what runs between `start()` and the call of the function it returns. */
export function costMeter(): () => SectionCost {
  const started = performance.now();
  const cpuBefore = treeCpuSeconds();
  const loadAtStart = Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
  return () => {
    const cpuAfter = treeCpuSeconds();
    return {
      wallS: Math.round((performance.now() - started) / 100) / 10,
      cpuS: cpuBefore === null || cpuAfter === null ? null : Math.round((cpuAfter - cpuBefore) * 10) / 10,
      loadAtStart,
    };
  };
}

/** The run's cost as the result file records it. */
export interface RunCost {
  /** The whole run, setup included. */
  totalS: number;
  totalCpuS: number | null;
  /** One-time setup done by this run (the comparison engine's install), timed apart; 0 when already there. */
  setupS: number;
  /** The run without its one-time setup: what issue 17's "under 10 minutes" is about. */
  benchS: number;
  setup: Record<string, SectionCost>;
  sections: Record<string, SectionCost>;
}

/** Adds up the run's cost from its setup steps and sections and the whole run's meter. */
export function runCost(whole: SectionCost, setup: Record<string, SectionCost>, sections: Record<string, SectionCost>): RunCost {
  const setupS = Math.round(Object.values(setup).reduce((s, c) => s + c.wallS, 0) * 10) / 10;
  return { totalS: whole.wallS, totalCpuS: whole.cpuS, setupS, benchS: Math.round((whole.wallS - setupS) * 10) / 10, setup, sections };
}

/** The run-time block under the table: each section's wall and CPU seconds, then the whole run. */
export function formatCost(cost: RunCost): string {
  const rows: string[][] = [];
  const row = (name: string, c: SectionCost) => rows.push([name, `${c.wallS.toFixed(1)} s`, c.cpuS === null ? '' : `${c.cpuS.toFixed(1)} s`, c.loadAtStart.toFixed(1)]);
  for (const [name, c] of Object.entries(cost.setup)) row(`setup: ${name} (once)`, c);
  for (const [name, c] of Object.entries(cost.sections)) row(name, c);
  const header = ['section', 'wall', 'CPU', 'load at start'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`.trimEnd();
  const lines = ['', '## run time (CPU: the bench process, its workers, sandbox hosts and Temporal server, and the processes they ran)', line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  lines.push(
    `  whole run ${cost.totalS.toFixed(1)} s${cost.totalCpuS === null ? '' : ` (${cost.totalCpuS.toFixed(1)} CPU s)`}${cost.setupS > 0 ? `, of which one-time setup ${cost.setupS.toFixed(1)} s: ${cost.benchS.toFixed(1)} s without it` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
