/**
 * Replays every run of every workflow a test file ran (a long task continues as new, so one
 * workflow id can have several runs, each with its own history) against the current workflow
 * code. Returns how many runs replayed; failures are listed by workflow and run.
 */
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../worker/workflow-bundle';

export async function replayAllRuns(client: Client, taskQueue: string): Promise<{ runs: number; workflows: Set<string>; failures: string[] }> {
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const execution of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) runs.push({ workflowId: execution.workflowId, runId: execution.runId });
  const histories = (async function* () {
    for (const { workflowId, runId } of runs) yield { workflowId, history: await client.workflow.getHandle(workflowId, runId).fetchHistory() };
  })();
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    replayed++;
    if (result.error !== undefined) failures.push(`${result.workflowId}: ${String(result.error)}`);
  }
  return { runs: replayed, workflows: new Set(runs.map((r) => r.workflowId)), failures };
}

/** Every run of `workflowId`, oldest first (following continue-as-new back from the latest). */
export async function historiesOfRuns(client: Client, workflowId: string): Promise<import('@temporalio/proto').temporal.api.history.v1.IHistory[]> {
  const runs = [];
  let history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>> | undefined = await client.workflow.getHandle(workflowId).fetchHistory();
  while (history !== undefined) {
    runs.unshift(history);
    const previous: string | null | undefined = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    history = previous ? await client.workflow.getHandle(workflowId, previous).fetchHistory() : undefined;
  }
  return runs;
}
