/**
 * `throughput`: tool calls per second with 1, 10 and 50 concurrent 10-step tasks on one worker,
 * guarded vs bare, alternating, with the peak resident memory of each worker (for the guarded one
 * including its sandbox host). Target: `throughput.ratio` (guarded / bare calls per second at
 * 50 concurrent tasks) at least 0.8.
 */
import { figure, single, type BenchContext, type BenchSection, type Figure } from '../bench-section';
import { summarize } from '../stats';
import { benchWorkers } from '../support/bench-workers';
import { runBareTask, runGuardedTask, samplePeakRss, type BenchWorker, type PeakRss } from '../support/temporal-bench';
import { STEPS_PER_TASK } from './step';

const CONCURRENCY = [1, 10, 50];

interface LoadRun {
  callsPerSecond: number;
  peakRss: PeakRss;
  taskLatencies: number[];
}

async function load(context: BenchContext, worker: BenchWorker, tasks: number): Promise<LoadRun> {
  const run = worker.kind === 'guarded' ? runGuardedTask : runBareTask;
  const peak = samplePeakRss(worker);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: tasks }, () => run(context, worker, STEPS_PER_TASK)));
  const seconds = (performance.now() - started) / 1000;
  return { callsPerSecond: (tasks * STEPS_PER_TASK) / seconds, peakRss: peak(), taskLatencies: results.map((r) => r.wallMs) };
}

export const throughputSection: BenchSection = {
  name: 'throughput',
  title: 'guarded vs bare tool calls per second at 1, 10 and 50 concurrent tasks on one worker',
  async run(context) {
    const { guarded, bare } = await benchWorkers(context);
    const figures: Figure[] = [];
    for (const tasks of CONCURRENCY) {
      // Alternating runs where they are short (one task); one each above (10 and 50 tasks take minutes on a loaded machine).
      const rounds = !context.quick && tasks === 1 ? 3 : 1;
      context.log(`throughput: ${tasks} concurrent tasks`);
      const g: LoadRun[] = [];
      const b: LoadRun[] = [];
      for (let round = 0; round < rounds; round += 1) {
        if (round % 2 === 0) {
          g.push(await load(context, guarded, tasks));
          b.push(await load(context, bare, tasks));
        } else {
          b.push(await load(context, bare, tasks));
          g.push(await load(context, guarded, tasks));
        }
      }
      const rate = (runs: LoadRun[]) => summarize(runs.map((r) => r.callsPerSecond));
      const id = tasks === 50 ? 'throughput.ratio' : `throughput.${tasks}`;
      figures.push(
        figure(id, `guarded calls/s, ${tasks} concurrent task${tasks === 1 ? '' : 's'}`, rate(g), {
          unit: 'calls/s',
          baseline: { label: 'bare calls/s', summary: rate(b) },
        }),
        figure(`throughput.latency.${tasks}`, `task latency, ${tasks} concurrent`, summarize(g.flatMap((r) => r.taskLatencies)), {
          baseline: { label: 'bare task latency', summary: summarize(b.flatMap((r) => r.taskLatencies)) },
        }),
        figure(`throughput.rss.${tasks}`, `peak worker RSS incl. sandbox host, ${tasks} concurrent`, single(Math.max(...g.map((r) => r.peakRss.total))), {
          unit: 'MB',
          baseline: { label: 'bare worker RSS', summary: single(Math.max(...b.map((r) => r.peakRss.total))) },
          note: `worker ${Math.max(...g.map((r) => r.peakRss.worker)).toFixed(0)} MB, sandbox host ${Math.max(...g.map((r) => r.peakRss.children)).toFixed(0)} MB (peaks)`,
        }),
      );
    }
    return {
      figures,
      notes: [
        `${context.quick ? 'One run per level' : 'Three runs with one task, one run at 10 and 50 tasks'}, guarded and bare alternating; calls/s = tasks x ${STEPS_PER_TASK} tool calls / wall time from the first start to the last result; worker defaults (no tuning) on both sides.`,
      ],
    };
  },
};
