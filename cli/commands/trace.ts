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

/** The task's result (closed) or state (running), or undefined when Temporal cannot tell. */
async function taskOutcome(env: NodeJS.ProcessEnv, workflowId: string): Promise<TaskResult | TaskState | undefined> {
  let connected;
  try {
    connected = await connectClient(loadTemporalConfig(env), { connectTimeoutMs: 3_000 });
  } catch {
    return undefined;
  }
  try {
    const handle = connected.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    if (description.status.name === 'COMPLETED' || description.status.name === 'FAILED') {
      // A long task's earlier runs are archived where the workers keep blobs (the shared database
      // when WARDEN_DATABASE_URL is set, else the shared folder): put them back.
      const result = await agentTaskResult(handle);
      const deployment = await openDeploymentBlobStore(env, stateDirOf(env)).catch(() => undefined);
      if (deployment === undefined) return result;
      try {
        return await assembleTaskResult(result, deployment.blobs, { resolveClaimChecks: false }).catch(() => result);
      } finally {
        await deployment.close();
      }
    }
    if (description.status.name === 'RUNNING') {
      // A deadline on the call itself, not a race: the connection closes below only once it ended.
      return await connected.client.withDeadline(Date.now() + 5_000, () => handle.query(taskStateQuery));
    }
    return undefined;
  } catch {
    return undefined;
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
    const result = await taskOutcome(io.env, taskId);
    if (records.length === 0 && result === undefined) {
      io.stderr(`${terminalLine(`warden trace: ERR_CUSTODY_NOT_FOUND: no custody records of task ${taskId}, and Temporal does not know it`)}\n`);
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
