/**
 * A stranger on the test Temporal server: a raw gRPC long poll under an identity it copied, and
 * what DescribeTaskQueue says of that identity. For the attacks on `warden run`'s poller notes
 * (worker/standalone-worker.ts: which pollers a state folder vouches for).
 */
import { temporal } from '@temporalio/proto';
import { connectClient } from '../../temporal/connect';
import { testTemporalConfig } from './temporal';

/**
 * The stranger: one raw long poll of `queue`'s activity tasks under `identity`, held up to
 * `holdMs` (at least 2 s: the server refuses shorter; 60 s is the server's own long-poll limit);
 * resolves with the type of the activity task it was handed, if any.
 */
export async function strangerPolls(queue: string, identity: string, holdMs = 60_000): Promise<string | undefined> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    const task = await connection
      .withDeadline(Date.now() + holdMs, () => client.workflowService.pollActivityTaskQueue({ namespace: client.options.namespace, taskQueue: { name: queue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL }, identity }))
      .catch((error: unknown) => {
        // The deadline ends the poll (nothing was handed to it); anything else means the stranger never polled.
        if (!(error instanceof Error && /DEADLINE_EXCEEDED|deadline/i.test(error.message))) throw error;
        return undefined;
      });
    return task?.activityType?.name ?? undefined;
  } finally {
    await connection.close();
  }
}

/** When the server last saw `identity` poll `queue`'s activity tasks (ms since the epoch), undefined when not listed. */
export async function lastPolled(queue: string, identity: string): Promise<number | undefined> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    const response = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: queue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const poller = (response.pollers ?? []).find((p) => p.identity === identity);
    if (poller === undefined) console.error('pollers listed:', JSON.stringify(response.pollers));
    return poller?.lastAccessTime ? Number(poller.lastAccessTime.seconds ?? 0) * 1000 + Math.floor((poller.lastAccessTime.nanos ?? 0) / 1e6) : undefined;
  } finally {
    await connection.close();
  }
}
