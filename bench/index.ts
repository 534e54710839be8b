/**
 * `npm run bench [-- [--quick] [--json] [section ...]]`: Warden's one benchmark suite. Runs the
 * sections of bench/sections/ (all, or those named), prints a table (or, with --json, one JSON
 * object on stdout; progress goes to stderr either way) and writes the JSON object to
 * bench/results/<time>-<host>.json. Exit code 0, 1 when a section failed, 2 for bad usage.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchContext, SectionResult } from './bench-section';
import { checkTargets, environment, formatTable } from './report';
import { costMeter, formatCost, runCost, type SectionCost } from './run-cost';
import { defaultSections, SECTIONS } from './sections';
import { agtPython } from './sections/policy';
import { benchTaskQueue } from './support/bench-task-queue';

const USAGE = `usage: npm run bench -- [--quick] [--json] [--list] [section ...]

Sections (default: all but those marked *, in this order): ${SECTIONS.map((s) => `${s.name}${s.runByDefault === false ? '*' : ''}`).join(', ')}
  --setup   only the one-time setup (the comparison policy engine's virtual environment), then exit
  --quick   fewer samples (same figures), for a quick look
  --json    print one JSON object on stdout instead of the table
  --list    list the sections and what each compares`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { setup: { type: 'boolean' }, quick: { type: 'boolean' }, json: { type: 'boolean' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.list) {
    for (const s of SECTIONS) process.stdout.write(`${s.name.padEnd(18)} ${s.title}${s.runByDefault === false ? ' (only when named)' : ''}\n`);
    return 0;
  }
  const unknown = positionals.filter((name) => !SECTIONS.some((s) => s.name === name));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown section${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}\n${USAGE}\n`);
    return 2;
  }
  const selected = positionals.length === 0 ? defaultSections() : SECTIONS.filter((s) => positionals.includes(s.name));

  const root = join(__dirname, '..');
  const tmpDir = mkdtempSync(join(os.tmpdir(), 'warden-bench-'));
  const results = new Map<string, SectionResult>();
  const cleanups: (() => Promise<void> | void)[] = [];
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const context: BenchContext = {
    quick: values.quick === true,
    log,
    tmpDir,
    root,
    stateDir: join(root, '.warden-bench'),
    taskQueue: benchTaskQueue(),
    results,
    shared: new Map(),
    onClose: (cleanup) => cleanups.push(cleanup),
  };
  // Every process the bench spawns inherits the run's queue: a `warden run` or `warden worker` it
  // starts without --task-queue never lands on a queue a user's worker polls on a reused server.
  process.env['WARDEN_TASK_QUEUE'] = context.taskQueue;
  process.env['WARDEN_STATE_DIR'] = context.stateDir;
  if (values.setup) {
    const agt = agtPython({ stateDir: context.stateDir, log });
    if ('python' in agt) log(`setup: the comparison policy engine is ready (${agt.python})`);
    else log(`setup: the comparison policy engine is unavailable: ${agt.unavailable} (the policy section will run without it)`);
    return 0;
  }
  const startedAt = new Date();
  const whole = costMeter();
  const env = environment(root);
  const setupCosts: Record<string, SectionCost> = {};
  const sectionCosts: Record<string, SectionCost> = {};
  let failed = false;
  try {
    // One-time setup first and timed apart, so a first run's install is not read as the cost of a section.
    if (selected.some((s) => s.name === 'policy')) {
      const meter = costMeter();
      const agt = agtPython({ stateDir: context.stateDir, log });
      context.shared.set('agt-python', agt);
      const cost = meter();
      // Installed now, or tried and failed: either way the time is setup's, not the policy section's.
      if (!('python' in agt) || agt.installed) setupCosts['comparison policy engine (PyPI install)'] = cost;
    }
    for (const section of selected) {
      log(`${section.name}: ${section.title}`);
      const meter = costMeter();
      try {
        results.set(section.name, await section.run(context));
      } catch (error) {
        failed = true;
        log(`${section.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        results.set(section.name, { figures: [], notes: [], skipped: `failed: ${error instanceof Error ? error.message : String(error)}` });
      }
      const cost = meter();
      sectionCosts[section.name] = cost;
      log(`${section.name}: done in ${cost.wallS.toFixed(1)} s${cost.cpuS === null ? '' : ` (${cost.cpuS.toFixed(1)} CPU s)`}`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`cleanup failed: ${(error as Error).message}`);
      }
    }
    rmSync(tmpDir, { recursive: true, force: true });
  }

  const cost = runCost(whole(), setupCosts, sectionCosts);
  const fullRun = !context.quick && positionals.length === 0;
  const targets = checkTargets(results, { benchS: cost.benchS, fullRun });
  const output = {
    schema: 'warden-bench/1',
    startedAt: startedAt.toISOString(),
    durationS: cost.totalS,
    quick: context.quick,
    sectionsRun: selected.map((s) => s.name),
    cost,
    ...env,
    loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    sections: Object.fromEntries(results),
    targets,
  };
  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-${os.hostname()}${context.quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(output)}\n`);
  else {
    const titles = new Map(SECTIONS.map((s) => [s.name, s.title]));
    process.stdout.write(formatTable(results, titles, targets));
    process.stdout.write(formatCost(cost));
    const load = (values: number[]) => values.map((l) => l.toFixed(1)).join(' ');
    process.stdout.write(
      `\n${output.durationS} s on ${os.cpus().length} cores (${process.version}), load average ${load((env.machine as { loadAverage: number[] }).loadAverage)} at the start, ${load(output.loadAverageAtEnd)} at the end; written to ${file}\n`,
    );
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
