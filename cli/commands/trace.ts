/**
 * `warden trace <workflowId>`: a task as a timeline from its custody records (intent → model
 * turns → proposed actions → decisions → tool effects → sub-agents → outcome), each line naming
 * its record's seq. Decisions are the workflow's, read from its result (or state) when the
 * Temporal server can be reached; without it the timeline shows what the ledger alone holds.
 */
import { parseCommandArgs, workflowIdUsageError } from '../parse-command-args';
import { readTaskRecords } from '../../custody/process-ledger';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { openDeploymentBlobStore } from '../../dataplane/open-deployment-blob-store';
import { buildTaskTimeline, formatTaskTimeline } from '../../custody/task-timeline';
import { WardenError } from '../../errors';
import { stateDirOf } from '../../state-dir';
import type { TaskResult, TaskState } from '../../task/task-run';
import { sha256OfJson, rootWorkflowIdOf } from '../../telemetry/warden-span-attributes';
import { connectClient } from '../../temporal/connect';
import { agentTaskResult } from '../../client/start-agent-task';
import { describeTask, TaskNotFoundError } from '../../client/task-not-found';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { taskStateQuery } from '../../workflows/definitions';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const TRACE_USAGE = `usage: warden trace <workflowId> [--json]

  Prints the task's timeline from the custody ledger (<state folder>/custody.db): intent, model
  turns, proposed actions, decisions, tool effects, sub-agents and outcome, each line with the
  seq of the custody record behind it ([   -] when none). Decisions come from the workflow's
  result, read from Temporal (TEMPORAL_ADDRESS or the embedded server) when it can be reached.
  --json  print the timeline as one JSON object`;

/**
 * What Temporal says of the task: its result (closed) or state (running); `unknown` when it does
 * not know the workflow id; `unreachable` when it could not be asked; `none` when it knows the task
 * but has neither (cancelled, terminated, timed out).
 * @throws TaskNotFoundError (ERR_TASK_NOT_FOUND) when the workflow is not a Warden task (another
 *   type): as every command that takes a workflow id (client/task-not-found.ts, describeTask).
 */
async function taskOutcome(env: NodeJS.ProcessEnv, workflowId: string): Promise<{ kind: 'found'; outcome: TaskResult | TaskState } | { kind: 'unknown' | 'unreachable' | 'none' }> {
  let connected;
  try {
    connected = await connectClient(loadTemporalConfig(env), { connectTimeoutMs: 3_000 });
  } catch {
    return { kind: 'unreachable' };
  }
  try {
    const handle = connected.client.workflow.getHandle(workflowId);
    let description;
    try {
      description = await describeTask(connected.client, workflowId);
    } catch (error) {
      if (error instanceof TaskNotFoundError && error.details['workflowType'] !== undefined) throw error;
      return { kind: error instanceof TaskNotFoundError ? 'unknown' : 'unreachable' };
    }
    if (description.status.name === 'COMPLETED' || description.status.name === 'FAILED') {
      // A long task's earlier runs are archived where the workers keep blobs (the shared database
      // when WARDEN_DATABASE_URL is set, else the shared folder): put them back.
      const result = await agentTaskResult(handle);
      const deployment = await openDeploymentBlobStore(env, stateDirOf(env)).catch(() => undefined);
      if (deployment === undefined) return { kind: 'found', outcome: result };
      try {
        return { kind: 'found', outcome: await assembleTaskResult(result, deployment.blobs, { resolveClaimChecks: false }).catch(() => result) };
      } finally {
        await deployment.close();
      }
    }
    if (description.status.name === 'RUNNING') {
      // A deadline on the call itself, not a race: the connection closes below only once it ended.
      return { kind: 'found', outcome: await connected.client.withDeadline(Date.now() + 5_000, () => handle.query(taskStateQuery)) };
    }
    return { kind: 'none' };
  } catch (error) {
    if (error instanceof TaskNotFoundError) throw error;
    return { kind: 'none' };
  } finally {
    await connected.connection.close();
  }
}

export async function traceCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('trace', TRACE_USAGE, argv, io, { json: { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  const [workflowId, ...extra] = args.positionals;
  if (workflowId === undefined || extra.length > 0) {
    io.stderr(`warden trace: expected one workflow id\n${TRACE_USAGE}\n`);
    return EXIT.usage;
  }
  const badId = workflowIdUsageError('trace', TRACE_USAGE, io, workflowId);
  if (badId !== undefined) return badId;
  try {
    const taskId = rootWorkflowIdOf(workflowId);
    const records = await readTaskRecords(stateDirOf(io.env), io.env, taskId);
    const temporal = await taskOutcome(io.env, taskId);
    const result = temporal.kind === 'found' ? temporal.outcome : undefined;
    if (records.length === 0 && result === undefined) {
      // Say what Temporal said, not more: it may know the task (cancelled: no result), or not have been reachable.
      const why = { unknown: 'and Temporal has no task with that workflow id', unreachable: 'and Temporal could not be reached to ask', none: 'and Temporal holds no result or state of it', found: '' }[temporal.kind];
      io.stderr(`${terminalLine(`warden trace: ERR_CUSTODY_NOT_FOUND: no custody records of task ${taskId}, ${why}`)}\n`);
      return EXIT.failed;
    }
    const timeline = buildTaskTimeline(taskId, records, { ...(result === undefined ? {} : { result }), argsSha256: sha256OfJson });
    io.stdout(args.values.json ? `${terminalJson(timeline, 2)}\n` : formatTaskTimeline(timeline));
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden trace: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
