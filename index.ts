/**
 * Warden's public API for programs that start and follow agent tasks with the Temporal client,
 * or host Warden workers themselves.
 */
export { agentTask } from './workflows/agent-task';
export { AGENT_TASK_WORKFLOW, TASK_QUEUE, taskStateQuery, approvalUpdate, type ApprovalOutcome } from './workflows/definitions';
export { TaskSchema, type Task, type TaskFileInput } from './task/task-schema';
export { AgentTaskInputSchema, TaskResultSchema, type AgentTaskInput, type TaskResult, type TaskState, type StepRecord, type TaskStatus } from './task/task-run';
export { loadTaskFile, parseTask } from './task/load-task-file';
export { startAgentTask, followAgentTask, newTaskWorkflowId } from './client/start-agent-task';
export { decideApproval, listPendingApprovals, readApproverKeyFile, findApproverKeyFile, type DecideApprovalOptions, type PendingApprovalEntry } from './client/approvals';
export { createWardenWorker, type WardenWorker, type WardenWorkerOptions } from './worker/create-warden-worker';
export { WardenError, TaskFileError, ERROR_CODES, type ErrorCode } from './errors';
