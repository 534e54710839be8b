/**
 * `history`: what one step costs in workflow history, and in wall time, as tasks grow: a scripted
 * task of 10, 100 and 1,000 trivial tool calls (10 and 100 with --quick) next to the bare workflow
 * doing as many steps (bench/support/bare-workflow.ts). History bytes are summed over every run
 * of a task that continued as new. Flat per step is the target (issue 12): a history that grows
 * with the square of the step count hits Temporal's limits (50 MB, 51,200 events) well before
 * 1,000 steps.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { startAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { figure, single, type BenchContext, type BenchSection, type Figure } from '../bench-section';
import { ADD_TOOL_SOURCE } from '../support/bare-activities';
import { benchWorkers } from '../support/bench-workers';
import { runBareTask, temporalBench, type BenchWorker } from '../support/temporal-bench';
import { benchWorkerRuntime, workerRuntimeNote } from '../support/worker-runtime';

const { History } = temporal.api.history.v1;

/** Every run of `workflowId`, newest first: the chain continue-as-new leaves. */
async function runsOf(client: Client, workflowId: string): Promise<temporal.api.history.v1.IHistory[]> {
  const runs: temporal.api.history.v1.IHistory[] = [];
  let history: temporal.api.history.v1.IHistory | undefined = await client.workflow.getHandle(workflowId).fetchHistory();
  while (history !== undefined) {
    runs.push(history);
    const previous: string | null | undefined = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    history = previous ? await client.workflow.getHandle(workflowId, previous).fetchHistory() : undefined;
  }
  return runs;
}

interface Measured {
  bytes: number;
  events: number;
  runs: number;
  wallMs: number;
}

async function measureGuarded(context: BenchContext, worker: BenchWorker, steps: number): Promise<Measured> {
  const { client } = await temporalBench(context);
  const task = parseTask(
    {
      user: 'bench@example.com',
      intent: 'benchmark: add numbers',
      agent: { name: 'bench', model: { driver: 'scripted', script: [...Array.from({ length: steps }, (_, i) => ({ tool: 'add', args: { a: i, b: 1 } })), { final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: ADD_TOOL_SOURCE }] },
      grants: { tools: ['add'] },
      limits: { maxSteps: steps + 1, deadline: '1h' },
      // Measured on the data flow, which a task opts in to (workflows/data-flow-choice.ts); the default original loop is slower per step.
      dataFlow: true,
    },
    'bench',
    context.stateDir,
  );
  const started = performance.now();
  const handle = await startAgentTask(client, task, { taskQueue: worker.taskQueue });
  // The steps of earlier runs come back from the bench worker's blob store (its state folder).
  const result = await assembleTaskResult((await handle.result()) as TaskResult, openBlobStore(context.stateDir));
  const wallMs = performance.now() - started;
  if (result.status !== 'completed' || result.steps.length !== steps || result.steps.some((s, i) => s.output !== i + 1)) {
    throw new Error(`a ${steps}-step guarded task ended ${result.status} with ${result.steps.length} steps`);
  }
  const runs = await runsOf(client, handle.workflowId);
  return { bytes: runs.reduce((sum, h) => sum + History.encode(h).finish().length, 0), events: runs.reduce((sum, h) => sum + (h.events?.length ?? 0), 0), runs: runs.length, wallMs };
}

export const historySection: BenchSection = {
  name: 'history',
  // Not one of issue 17's figures: runs when named (`npm run bench -- history`).
  runByDefault: false,
  title: 'history bytes and wall time per step at 10, 100, 1,000 steps (flat per step)',
  async run(context) {
    const { client } = await temporalBench(context);
    const { guarded, bare } = await benchWorkers(context);
    const sizes = context.quick ? [10, 100] : [10, 100, 1000];
    const figures: Figure[] = [];
    const shapes: string[] = [];
    for (const steps of sizes) {
      context.log(`history: ${steps}-step tasks`);
      const g = await measureGuarded(context, guarded, steps);
      const b = await runBareTask(context, bare, steps);
      const bareBytes = History.encode(await client.workflow.getHandle(b.workflowId).fetchHistory()).finish().length;
      figures.push(
        figure(`history.bytes.${steps}`, `history per step, ${steps}-step task`, single(g.bytes / steps / 1024), {
          unit: 'KiB',
          baseline: { label: 'bare workflow', summary: single(bareBytes / steps / 1024) },
        }),
        figure(`history.wall.${steps}`, `wall time per step, ${steps}-step task`, single(g.wallMs / steps), {
          baseline: { label: 'bare workflow', summary: single(b.wallMs / steps) },
        }),
      );
      shapes.push(`${steps} steps: ${g.runs} run${g.runs === 1 ? '' : 's'}, ${(g.events / steps).toFixed(1)} events per step`);
    }
    return {
      figures,
      notes: [
        `One task per size on the shared guarded and bare workers; the guarded task continues as new at about 2,000 events per run. ${shapes.join('; ')}.`,
        'Per-step bytes fall as fixed costs (start, placement, commit) spread out; a history that grew with the square of the steps would rise instead.',
        workerRuntimeNote(benchWorkerRuntime(context)),
      ],
    };
  },
};
