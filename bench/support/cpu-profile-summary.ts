/**
 * Where a bench worker's CPU went: sums a V8 CPU profile (`.cpuprofile`, what `node --cpu-prof`
 * writes; `WARDEN_BENCH_CPU_PROF=<dir>` has the bench workers write them) by self time per file
 * (or package) and per function, and by inclusive time per function. Idle time is left out.
 *
 * Start-up is not what a step costs: `from` starts the count at the first sample whose stack
 * holds a frame naming it (e.g. `runToolStep` on the main thread, `runFlowTask` on the workflow
 * thread), so module loading and bundle compilation before the first task stay out.
 *
 * What a task costs once is not what each step costs: `skip` leaves out every sample whose stack
 * holds a frame naming one of its entries (e.g. `createWorkflow,startWorkflow` on the workflow
 * thread: the sandbox and module evaluation of each new task, and the activation that starts it),
 * so the rest is the step activations' own work. Samples on other stacks (the garbage collector,
 * idle message ports) are counted as before.
 *
 * Usage: node --require tsx/cjs bench/support/cpu-profile-summary.ts <file.cpuprofile> [--from <name>] [--skip <name,name>] [--top <n>] [--per <count>]
 * (`--per 110`: figures divided by 110, e.g. the tool calls of the run: milliseconds per call).
 */
import { readFileSync } from 'node:fs';

/** The parts of the `.cpuprofile` format (Chrome DevTools protocol `Profiler.Profile`) read here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds since the previous sample, one per sample. */
  timeDeltas: number[];
}

export interface CpuSummary {
  /** Milliseconds of non-idle samples counted. */
  totalMs: number;
  /** Seconds into the profile where counting started (0 without `from`, undefined when `from` never appeared). */
  fromSec: number | undefined;
  /** Self milliseconds per file, `node_modules` packages as `npm:<package>`, largest first. */
  byFile: [string, number][];
  /** Self milliseconds per `function file:line`, largest first. */
  byFunction: [string, number][];
  /** Inclusive milliseconds per `function file:line` (each sample counted once per function on its stack), largest first. */
  inclusive: [string, number][];
  /** Milliseconds of samples left out by `skip` (after `from`), divided by `per` like the rest. */
  skippedMs: number;
}

function fileOf(url: string, functionName: string): string {
  if (url === '') return `(${functionName})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `npm:${pkg[1]}`;
  return url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
}

function sorted(map: Map<string, number>, per: number): [string, number][] {
  return [...map].map(([k, us]): [string, number] => [k, us / 1000 / per]).sort((a, b) => b[1] - a[1]);
}

/** Sums `profile` (see the module header); `per` divides every figure (default 1); `skip` names frames whose samples are left out. */
export function summarizeCpuProfile(profile: CpuProfile, options: { from?: string; per?: number; skip?: readonly string[] } = {}): CpuSummary {
  const skip = options.skip ?? [];
  const per = options.per ?? 1;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameKey = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'} ${fileOf(f.url, f.functionName)}:${f.lineNumber + 1}`;
  };
  const holds = (id: number, name: string) => {
    for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) {
      const f = byId.get(c)!.callFrame;
      if (f.functionName === name || f.url.includes(name)) return true;
    }
    return false;
  };
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let counting = options.from === undefined;
  let at = profile.startTime;
  let fromUs: number | undefined = counting ? profile.startTime : undefined;
  let totalUs = 0;
  let skippedUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (!counting && holds(id, options.from!)) {
      counting = true;
      fromUs = at;
    }
    const frame = byId.get(id)?.callFrame;
    if (!counting || frame === undefined || frame.functionName === '(idle)') return;
    if (skip.some((name) => holds(id, name))) {
      skippedUs += dt;
      return;
    }
    totalUs += dt;
    const file = fileOf(frame.url, frame.functionName);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    const key = frameKey(id);
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
    const seen = new Set<string>();
    for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) {
      const k = frameKey(c);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  return {
    totalMs: totalUs / 1000 / per,
    fromSec: fromUs === undefined ? undefined : (fromUs - profile.startTime) / 1e6,
    byFile: sorted(byFile, per),
    byFunction: sorted(byFunction, per),
    inclusive: sorted(inclusive, per),
    skippedMs: skippedUs / 1000 / per,
  };
}

function main(argv: string[]): void {
  const file = argv[0];
  const option = (name: string) => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  if (file === undefined || file.startsWith('--')) {
    process.stderr.write('usage: cpu-profile-summary.ts <file.cpuprofile> [--from <function>] [--skip <function,function>] [--top <n>] [--per <count>]\n');
    process.exit(2);
  }
  const top = Number(option('--top') ?? 30);
  const per = Number(option('--per') ?? 1);
  const from = option('--from');
  const skipText = option('--skip');
  const skip = skipText === undefined ? [] : skipText.split(',').map((name) => name.trim());
  if (argv.includes('--skip') && (skipText === undefined || skipText.startsWith('--') || skip.some((name) => name === ''))) {
    process.stderr.write('cpu-profile-summary: --skip takes function names separated by commas, none empty\n');
    process.exit(2);
  }
  if (!Number.isInteger(top) || top <= 0 || !(per > 0)) {
    process.stderr.write('cpu-profile-summary: --top takes a positive integer, --per a positive number\n');
    process.exit(2);
  }
  let profile: CpuProfile;
  try {
    profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  } catch (error) {
    process.stderr.write(`cpu-profile-summary: ${file}: not a readable CPU profile (${error instanceof Error ? error.message : String(error)})\n`);
    process.exit(2);
  }
  const s = summarizeCpuProfile(profile, { ...(from === undefined ? {} : { from }), per, skip });
  if (s.fromSec === undefined) {
    process.stderr.write(`cpu-profile-summary: no sample holds "${from}"\n`);
    process.exit(1);
  }
  const unit = per === 1 ? 'ms' : `ms per ${per}`;
  const show = (title: string, rows: [string, number][]) => {
    const skipped = skip.length === 0 ? '' : `, ${s.skippedMs.toFixed(1)} left out under ${skip.join(', ')}`;
    process.stdout.write(`\n== ${title} (${unit}; ${s.totalMs.toFixed(1)} counted from ${s.fromSec!.toFixed(1)} s${skipped})\n`);
    for (const [k, v] of rows.slice(0, top)) process.stdout.write(`${v.toFixed(2).padStart(10)}  ${k}\n`);
  };
  show('self time by file', s.byFile);
  show('self time by function', s.byFunction);
  show('inclusive time by function', s.inclusive);
}

if (require.main === module) main(process.argv.slice(2));
