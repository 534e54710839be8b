/**
 * `endWorkflowTask`: an activity that does nothing. Its round trip through the data plane's queue
 * ends the workflow task that ran a chain of local tool calls (workflows/tool-step.ts
 * `runsLocally`): a signal or an Update that reached the server meanwhile (a `warden kill`, a
 * block) is delivered to the run only when that workflow task ends, and a task must hear it before
 * it can complete (workflows/agent-task-flow.ts).
 */
export interface EndWorkflowTaskInput {
  /** The run's workflow id (named in the activity's span and the Temporal UI). */
  workflowId: string;
}

export function createEndWorkflowTask(): (input: EndWorkflowTaskInput) => Promise<{ workflowId: string }> {
  return async (input) => ({ workflowId: input.workflowId });
}
