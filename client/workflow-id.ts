/**
 * What a workflow id a user gives may be: the one rule for ids that name an existing workflow
 * (`workflowIdProblem`), and the one rule for ids a user chooses for a new task
 * (`newWorkflowIdProblem`), which every entry point that starts a task under a chosen id applies
 * (`warden run --workflow-id`, `startAgentTask`'s `workflowId`).
 *
 * Invariant: a task's chosen workflow id never has the form of an id or key Warden derives from
 * another task's id, so no command that reads a task tree by id (rollback, snapshots, the custody
 * summary, trace, receipts) reads another tree's records for it.
 */
import { WardenError } from '../errors';
import { DERIVED_ID_SEPARATORS } from '../workflows/definitions';

/**
 * The longest workflow id this checks through: Temporal's default `limit.maxIDLength` (1,000
 * characters, dynamic config; the server refuses longer ids on start). A longer id names no task,
 * and gRPC calls carrying one were seen to be dropped without an answer (the command then ended
 * with exit 0 and no output).
 */
export const MAX_WORKFLOW_ID_LENGTH = 1_000;

/**
 * Why `workflowId`, as a user gave it, can name no workflow: empty, longer than
 * {@link MAX_WORKFLOW_ID_LENGTH}, or holding a control character (C0, DEL, C1: a line break
 * would also forge a line of this command's output); undefined when it can. Ids of sub-agents
 * (`<parent>/<sub-agent>-<step>`) pass: commands that read a task take them.
 */
export function workflowIdProblem(workflowId: string): string | undefined {
  if (workflowId.length === 0) return 'the workflow id is empty';
  if (workflowId.length > MAX_WORKFLOW_ID_LENGTH) return `the workflow id has ${workflowId.length} characters; Temporal takes at most ${MAX_WORKFLOW_ID_LENGTH}`;
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(workflowId);
  if (control !== null) return `the workflow id holds a control character (U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at character ${control.index + 1})`;
  return undefined;
}

/**
 * `workflowId` when it can name a workflow.
 * @throws WardenError ERR_WORKFLOW_ID_INVALID (a usage error: exit 2) naming what is wrong with it.
 */
export function checkWorkflowId(workflowId: string): string {
  const problem = workflowIdProblem(workflowId);
  if (problem !== undefined) throw new WardenError('ERR_WORKFLOW_ID_INVALID', problem, { details: { length: workflowId.length } });
  return workflowId;
}

/**
 * Why `workflowId` cannot be the id of a new task a user starts: any reason it can name no
 * workflow ({@link workflowIdProblem}), or it holds a separator Warden puts between a task's id
 * and what it derives from it ({@link DERIVED_ID_SEPARATORS}): `wr/reader` is the form of
 * sub-agent `reader` of task `wr`, so `warden rollback wr/reader` would fall back to `wr`'s
 * records and the custody summary would count it under `wr`. Undefined when it can.
 */
export function newWorkflowIdProblem(workflowId: string): string | undefined {
  const problem = workflowIdProblem(workflowId);
  if (problem !== undefined) return problem;
  for (const { separator, derives } of DERIVED_ID_SEPARATORS) {
    const at = workflowId.indexOf(separator);
    if (at === -1) continue;
    return `the workflow id ${JSON.stringify(workflowId)} holds "${separator}" (at character ${at + 1}), which Warden puts in ${derives}; a task's own id holds none of ${DERIVED_ID_SEPARATORS.map((s) => `"${s.separator}"`).join(', ')}, so that no command reads it as another task's (choose an id without them)`;
  }
  return undefined;
}

/**
 * `workflowId` when a new task may be started under it (see {@link newWorkflowIdProblem}).
 * @throws WardenError ERR_WORKFLOW_ID_INVALID (a usage error: exit 2) naming the id and why.
 */
export function checkNewWorkflowId(workflowId: string): string {
  const problem = newWorkflowIdProblem(workflowId);
  if (problem !== undefined) throw new WardenError('ERR_WORKFLOW_ID_INVALID', problem, { details: { length: workflowId.length } });
  return workflowId;
}
