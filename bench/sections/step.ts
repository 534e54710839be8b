/**
 * `step`: a 10-step guarded task (scripted model turn, grant and policy checks, per-call
 * credential, sandboxed tool, custody ledger) vs the bare workflow doing the same scripted turns
 * and the same trivial tool with no guard (bench/support/bare-workflow.ts), on the same server,
 * one task at a time, alternating. A step's cycle is the workflow time from one tool step's start
 * to the next. Target: `step.ratio` (guarded / bare median per step) at most 1.2.
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
  bare: TaskRun[];
}

/** Runs `rounds` guarded and bare tasks, alternating which goes first. */
export async function measureSteps(context: BenchContext, rounds: number): Promise<StepSamples> {
  const { guarded, bare } = await benchWorkers(context);
  // One untimed task each: caches, JIT, the sandbox host's first isolate.
  await runGuardedTask(context, guarded, STEPS_PER_TASK);
  await runBareTask(context, bare, STEPS_PER_TASK);
  const out: StepSamples = { guarded: [], bare: [] };
  for (let round = 0; round < rounds; round += 1) {
    const runGuarded = async () => out.guarded.push(await runGuardedTask(context, guarded, STEPS_PER_TASK));
    const runBare = async () => out.bare.push(await runBareTask(context, bare, STEPS_PER_TASK));
    if (round % 2 === 0) {
      await runGuarded();
      await runBare();
    } else {
      await runBare();
      await runGuarded();
    }
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
    const bareShape = await historyShape(context, (samples.bare[0] as TaskRun).workflowId);
    return {
      figures: stepFigures(samples),
      notes: [
        `History of one task: guarded ${describeShape(guardedShape)}; bare ${describeShape(bareShape)}.`,
        `${rounds} tasks each, alternating; per-step figures are the ${STEPS_PER_TASK - 1} cycles between consecutive tool steps of each task (workflow time, 1 ms resolution).`,
        'The guarded worker is what `warden worker` runs (custody ledger on); the bare worker runs the scripted turn and the tool in one activity per step.',
        workerRuntimeNote(benchWorkerRuntime(context)),
        ...(await stepPhaseNotes(context, samples.guarded, samples.bare)),
      ],
    };
  },
};
