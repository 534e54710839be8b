/**
 * Warden's public API for programs that start and follow agent tasks with the Temporal client,
 * or host Warden workers themselves.
 */
export { agentTask } from './workflows/agent-task';
export { AGENT_TASK_WORKFLOW, TASK_QUEUE, taskStateQuery, approvalUpdate, type ApprovalOutcome } from './workflows/definitions';
export { TaskSchema, type Task, type TaskFileInput } from './task/task-schema';
export { AgentTaskInputSchema, TaskResultSchema, type AgentTaskInput, type TaskResult, type TaskState, type StepRecord, type TaskStatus } from './task/task-run';
export { loadTaskFile, parseTask } from './task/load-task-file';
export { startAgentTask, followAgentTask, newTaskWorkflowId, type ProgressEvent, type StartAgentTaskOptions } from './client/start-agent-task';
export { newWorkflowIdProblem } from './client/workflow-id';
export { decideApproval, listPendingApprovals, readPendingApprovals, readApproverKeyFile, findApproverKeyFile, type DecideApprovalOptions, type PendingApprovalEntry, type PendingApprovalsReading, type UnansweredTask } from './client/approvals';
export { createWardenWorker, createWardenWorkerFromConfig, installQuietRuntime, type WardenWorker, type WardenWorkerOptions } from './worker/create-warden-worker';
export { connectClient, connectWorkerConnection, type ConnectedClient } from './temporal/connect';
export { loadTemporalConfig, type TemporalConfig } from './temporal/temporal-config';
export { ensureTemporalServer, type TemporalServerInfo } from './temporal/embedded-server';
export { agentTaskResult } from './client/start-agent-task';
export { taskResultOfFailure, TASK_FAILURE_TYPES } from './workflows/task-close';
export { WARDEN_SEARCH_ATTRIBUTES } from './workflows/search-attributes';
export { WardenError, TaskFileError, ERROR_CODES, type ErrorCode } from './errors';
// MCP and programs: an existing agent behind Warden, and the OS sandbox on its own.
export { createTaskSession, serveTaskOverHttp, type TaskSession, type TaskSessionOptions, type HttpTaskServer } from './mcp/task-session-server';
export { sessionCallUpdate, endSessionSignal, sessionToolsQuery, type SessionCall, type SessionTool } from './workflows/definitions';
export { runSandboxed, type SandboxedRunResult, type SandboxedRunOptions } from './sandbox/os/run-sandboxed';
export { startSandboxedProcess, osSandboxProblem, type SandboxedProcess, type SandboxExit } from './sandbox/os/sandboxed-process';
export { type OsSandboxSpecInput } from './sandbox/os/os-sandbox-spec';
export { assembleTaskResult } from './client/assemble-task-result';
export { openBlobStore, type BlobStore } from './dataplane/blob-store';
export { sharedDirOf } from './dataplane/shared-storage';
// Attestation: claims, and checking Warden's signed results offline with only a published JWKS.
export { ClaimSchema, StructuredClaimSchema, type Claim, type StructuredClaim } from './attestation/claim-schema';
export { type ClaimOutcome } from './attestation/claim-outcome';
export { verifyClaimAttestation, type AttestationCheck } from './attestation/verify-attestation';
export { verifyTaskReceipt, TaskReceiptSchema, type TaskReceipt, type ReceiptCheck } from './attestation/task-receipt';
export { verifyEnvelope, type DsseEnvelope } from './attestation/dsse';
