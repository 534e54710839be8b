/**
 * Warden's public API for programs that start and follow agent tasks with the Temporal client,
 * or host Warden workers themselves.
 */
export { agentTask } from './workflows/agent-task';
export { AGENT_TASK_WORKFLOW, TASK_QUEUE, taskStateQuery } from './workflows/definitions';
export { TaskSchema, type Task, type TaskFileInput } from './task/task-schema';
export { AgentTaskInputSchema, TaskResultSchema, type AgentTaskInput, type TaskResult, type TaskState, type StepRecord, type TaskStatus } from './task/task-run';
export { loadTaskFile, parseTask } from './task/load-task-file';
export { startAgentTask, followAgentTask, newTaskWorkflowId } from './client/start-agent-task';
export { createWardenWorker, type WardenWorker, type WardenWorkerOptions } from './worker/create-warden-worker';
export { WardenError, TaskFileError, ERROR_CODES, type ErrorCode } from './errors';
export { assembleTaskResult } from './client/assemble-task-result';
export { openBlobStore, type BlobStore } from './dataplane/blob-store';
export { sharedDirOf } from './dataplane/shared-storage';
