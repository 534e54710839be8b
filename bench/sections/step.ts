/**
 * `step`: a 10-step guarded task (scripted model turn, grant and policy checks, per-call
 * credential, sandboxed tool, custody ledger) vs the bare workflow doing the same scripted turns
 * and the same trivial tool with no guard (bench/support/bare-workflow.ts), on the same server,
 * one task at a time, alternating. A step's cycle is the time from one tool call's start to the
 * next's on the worker's clock (the guarded call's `execute_tool` custody span, the bare
 * activity's own reading). Target: `step.ratio` (guarded / bare median per step) at most 1.2.
 *
 * The guarded task runs as written: its pure, short tool's calls run as local activities on the
 * data flow (workflows/tool-step.ts `runsLocally`). `step.queued` is the same task with a per-call
 * limit that keeps every call an activity on the queue, as a tool with capabilities is called.
 */
import { figure, type BenchContext, type BenchSection, type SectionResult } from '../bench-section';
import { summarize } from '../stats';
import { benchWorkers } from '../support/bench-workers';
import { stepPhaseNotes } from '../support/step-phases';
import { historyShape, runBareTask, runGuardedTask, type HistoryShape, type TaskRun } from '../support/temporal-bench';
import { benchWorkerRuntime, workerRuntimeNote } from '../support/worker-runtime';

export const STEPS_PER_TASK = 10;

export interface StepSamples {
  guarded: TaskRun[];
  /** The same guarded task with every call an activity on the queue (`GuardedPath` 'queued'). */
  queued: TaskRun[];
  bare: TaskRun[];
}

/** Runs `rounds` guarded (both paths) and bare tasks, rotating which goes first. */
export async function measureSteps(context: BenchContext, rounds: number): Promise<StepSamples> {
  const { guarded, bare } = await benchWorkers(context);
  // One untimed task each: caches, JIT, the sandbox host's first isolate.
  await runGuardedTask(context, guarded, STEPS_PER_TASK);
  await runGuardedTask(context, guarded, STEPS_PER_TASK, 'queued');
  await runBareTask(context, bare, STEPS_PER_TASK);
  const out: StepSamples = { guarded: [], queued: [], bare: [] };
  const kinds = [
    async () => out.guarded.push(await runGuardedTask(context, guarded, STEPS_PER_TASK)),
    async () => out.queued.push(await runGuardedTask(context, guarded, STEPS_PER_TASK, 'queued')),
    async () => out.bare.push(await runBareTask(context, bare, STEPS_PER_TASK)),
  ];
  for (let round = 0; round < rounds; round += 1) {
    for (let k = 0; k < kinds.length; k += 1) await kinds[(round + k) % kinds.length]!();
  }
  return out;
}

/**
 * True when this run's shared worker pair has already run guarded and bare tasks (the step
 * section's), so a later section on the same processes needs no warm-up task of its own. A pair
 * started again (after a failed start) is a new pair and is not warm.
 */
export async function workersWarm(context: BenchContext): Promise<boolean> {
  const warm = context.shared.get('workers-warm');
  return warm !== undefined && warm === (await benchWorkers(context));
}

export function stepFigures(samples: StepSamples): SectionResult['figures'] {
  const perStep = (runs: TaskRun[]) => summarize(runs.flatMap((r) => r.stepCycles));
  const perTask = (runs: TaskRun[]) => summarize(runs.map((r) => r.wallMs));
  return [
    figure('step.ratio', `guarded step cycle (${STEPS_PER_TASK}-step task)`, perStep(samples.guarded), {
      baseline: { label: 'bare Temporal step, same activities', summary: perStep(samples.bare) },
    }),
    figure('step.task', `whole ${STEPS_PER_TASK}-step task, start to result`, perTask(samples.guarded), {
      baseline: { label: 'bare task', summary: perTask(samples.bare) },
    }),
    figure('step.queued', 'guarded step cycle, every call an activity on the queue', perStep(samples.queued), {
      baseline: { label: 'bare Temporal step, same activities', summary: perStep(samples.bare) },
    }),
  ];
}

function describeShape(shape: HistoryShape): string {
  const per = (n: number) => (n / STEPS_PER_TASK).toFixed(1);
  return `${per(shape.events)} events, ${per(shape.workflowTasks)} workflow tasks, ${per(shape.activityTasks)} activities, ${per(shape.localActivityMarkers)} local activities, ${per(shape.patchMarkers)} patch markers, ${per(shape.timers)} timers, ${(shape.bytes / STEPS_PER_TASK / 1024).toFixed(1)} KiB per step`;
}

export const stepSection: BenchSection = {
  name: 'step',
  title: 'a 10-step guarded task vs a bare Temporal workflow running the same trivial activities',
  async run(context) {
    const rounds = context.quick ? 3 : 10;
    const samples = await measureSteps(context, rounds);
    context.shared.set('step-samples', samples);
    context.shared.set('workers-warm', await benchWorkers(context));
    const guardedShape = await historyShape(context, (samples.guarded[0] as TaskRun).workflowId);
    const queuedShape = await historyShape(context, (samples.queued[0] as TaskRun).workflowId);
    const bareShape = await historyShape(context, (samples.bare[0] as TaskRun).workflowId);
    return {
      figures: stepFigures(samples),
      notes: [
        `History of one task: guarded ${describeShape(guardedShape)}; guarded, queued ${describeShape(queuedShape)}; bare ${describeShape(bareShape)}.`,
        `${rounds} tasks of each kind, in rotating order; per-step figures are the ${STEPS_PER_TASK - 1} cycles between consecutive tool calls of each task, start to start on the worker's clock (the guarded call's execute_tool custody span, whose start is recorded to 1 ms; the bare activity's own reading).`,
        'The guarded worker is what `warden worker` runs (custody ledger on); the bare worker runs the scripted turn and the tool in one activity per step. The guarded task\'s `add` is pure and short: on the data flow its calls run as local activities on the data plane\'s worker, no round trip through Temporal\'s matching; `step.queued` gives the task a 10 s per-call limit, which keeps every call an activity on the queue (the path of a tool with capabilities).',
        workerRuntimeNote(benchWorkerRuntime(context)),
        ...(await stepPhaseNotes(context, samples.queued, samples.bare)).map((line) => `queued: ${line}`),
      ],
    };
  },
};
