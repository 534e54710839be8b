/**
 * Warden's closed set of failures. Every error carries a stable string `code` that callers,
 * tests and other processes switch on; messages are for humans and may change. Across process
 * or isolate boundaries (sandbox host, Temporal activities) compare `code`, never `instanceof`.
 *
 * Deliberately plain classes with no imports: workflow code may import this file.
 */

export const ERROR_CODES = [
  // task files and configuration
  'ERR_TASK_FILE_UNREADABLE',
  'ERR_TASK_FILE_INVALID',
  'ERR_TASK_INPUT_INVALID',
  'ERR_CONFIG_INVALID',
  'ERR_WORKER_ID_IN_USE',
  'ERR_WORKER_STATE',
  // permissions
  'ERR_TOOL_NOT_GRANTED',
  'ERR_TOOL_UNKNOWN',
  'ERR_SUBAGENT_UNKNOWN',
  'ERR_SUBAGENT_NOT_GRANTED',
  'ERR_SUBAGENT_DEPTH',
  'ERR_RESOURCE_PROTECTED',
  // tool execution
  'ERR_TOOL_INPUT_INVALID',
  'ERR_TOOL_THREW',
  'ERR_TOOL_OUTPUT_NOT_JSON',
  'ERR_TOOL_OUTPUT_TOO_LARGE',
  'ERR_SANDBOX_TIMEOUT',
  'ERR_SANDBOX_MEMORY',
  'ERR_SANDBOX_CRASHED',
  'ERR_SANDBOX_COMPILE',
  'ERR_TOOL_CANCELLED',
  // OS sandbox (bubblewrap) and programs
  'ERR_OS_SANDBOX_UNAVAILABLE',
  'ERR_COMMAND_NOT_GRANTED',
  'ERR_COMMAND_NOT_FOUND',
  'ERR_WORKSPACE_QUOTA',
  // capabilities handed to tools
  'ERR_PATH_OUTSIDE_WORKSPACE',
  'ERR_PATH_NOT_FOUND',
  'ERR_FS_FAILED',
  'ERR_NETWORK_DENIED',
  'ERR_NETWORK_FAILED',
  'ERR_DATABASE_NOT_GRANTED',
  'ERR_SQL_DENIED',
  'ERR_SQL_FAILED',
  'ERR_CAPABILITY_NOT_GRANTED',
  'ERR_SECRET_UNAVAILABLE',
  // MCP servers as tool sources
  'ERR_MCP_UNAVAILABLE',
  'ERR_MCP_PROTOCOL',
  'ERR_MCP_TOOLS_CHANGED',
  'ERR_MCP_TOOL_FAILED',
  'ERR_MCP_NOT_INSTALLED',
  'ERR_MCP_NAME_CONFLICT',
  'ERR_MCP_PIN_MISMATCH',
  'ERR_MCP_LISTING_MISSING',
  // model drivers
  'ERR_MODEL_UNAVAILABLE',
  'ERR_MODEL_PROTOCOL',
  'ERR_MODEL_CONFIG',
  'ERR_MODEL_CONTEXT_MISSING',
  'ERR_MODEL_CONTEXT_MISMATCH',
  'ERR_SCRIPT_EXHAUSTED',
  // task limits
  'ERR_STEP_LIMIT',
  'ERR_DEADLINE_EXCEEDED',
  // temporal server
  'ERR_TEMPORAL_PORT_IN_USE',
  'ERR_TEMPORAL_CLI_BUILD',
  'ERR_TEMPORAL_START',
  'ERR_TEMPORAL_UNREACHABLE',
  'ERR_TEMPORAL_NAMESPACE_NOT_FOUND',
  // notifications
  'ERR_WEBHOOK_FAILED',
  // identity: the credential authority's keys
  'ERR_KEYSTORE_INVALID',
  'ERR_KEYSTORE_LOCKED',
  /** The operator's WARDEN_SIGNING_KEY_FILE cannot be read, is not a private JWK, or is readable by others (exit 2). */
  'ERR_SIGNING_KEY_FILE_INVALID',
  // identity: per-call credentials and task grants (every check has its own code)
  'ERR_CREDENTIAL_MALFORMED',
  'ERR_CREDENTIAL_UNSIGNED',
  'ERR_CREDENTIAL_ALG',
  'ERR_CREDENTIAL_HEADER',
  'ERR_CREDENTIAL_CRIT',
  'ERR_CREDENTIAL_TYPE',
  'ERR_CREDENTIAL_KID_UNKNOWN',
  'ERR_CREDENTIAL_SIGNATURE',
  'ERR_CREDENTIAL_EXPIRED',
  'ERR_CREDENTIAL_NOT_YET_VALID',
  'ERR_CREDENTIAL_AUDIENCE',
  'ERR_CREDENTIAL_ISSUER',
  'ERR_CREDENTIAL_SCOPE',
  'ERR_CREDENTIAL_REPLAYED',
  'ERR_CREDENTIAL_REVOKED',
  // a grant this worker's state folder never issued (another state folder or keystore started the task)
  'ERR_CREDENTIAL_GRANT_UNKNOWN',
  // identity: delegation to sub-agents
  'ERR_DELEGATION_WIDENS',
  'ERR_DELEGATION_EXPIRY',
  'ERR_DELEGATION_DEPTH',
  'ERR_DELEGATION_FORGED',
  'ERR_DELEGATION_BROKEN',
  // policy engine
  'ERR_POLICY_UNREADABLE',
  'ERR_POLICY_INVALID',
  'ERR_POLICY_PACK_NOT_FOUND',
  'ERR_POLICY_REQUEST_INVALID',
  'ERR_POLICY_DENIED',
  'ERR_APPROVAL_REQUIRED',
  'ERR_APPROVAL_DENIED',
  'ERR_APPROVAL_TIMEOUT',
  // CLI task commands (status, logs, cancel): the workflow id is unknown, or the task already ended
  'ERR_TASK_NOT_FOUND',
  'ERR_TASK_NOT_RUNNING',
  // a workflow id a user gave that no Temporal workflow can have (empty, too long, control characters)
  'ERR_WORKFLOW_ID_INVALID',
  // approvals: decisions must come from a registered approver, for a request that is pending
  'ERR_APPROVAL_UNAUTHENTICATED',
  'ERR_APPROVAL_NOT_PENDING',
  'ERR_APPROVER_INVALID',
  // custody ledger
  'ERR_CUSTODY_BROKEN',
  'ERR_CUSTODY_NOT_FOUND',
  'ERR_CUSTODY_KEY',
  'ERR_CUSTODY_WRITE',
  // recovery: overlay commits, snapshots, rollback, SQL undo, compensation
  'ERR_COMMIT_CONFLICT',
  'ERR_COMMIT_FAILED',
  'ERR_ROLLBACK_CONFLICT',
  'ERR_OVERLAY_INVALID',
  'ERR_SNAPSHOT_NOT_FOUND',
  'ERR_SNAPSHOT_CORRUPT',
  'ERR_SNAPSHOT_TOO_LARGE',
  'ERR_UNDO_FAILED',
  'ERR_CALL_SUPERSEDED',
  'ERR_CALL_ATTEMPT_STUCK',
  'ERR_COMPENSATION_FAILED',
  // shared state store (PostgreSQL or SQLite)
  'ERR_STATE_UNAVAILABLE',
  'ERR_STATE_SCHEMA_OUTDATED',
  'ERR_STATE_SCHEMA_UNKNOWN',
  'ERR_STATE_CONFIG',
  // data plane: worker placement, shared storage, claim checks, payload limits
  'ERR_DATA_PLANE_LOST',
  'ERR_DATA_PLANE_ELSEWHERE',
  'ERR_SHARED_STORAGE',
  'ERR_OVERLAY_MISSING',
  'ERR_COMMIT_MISMATCH',
  'ERR_BLOB_MISSING',
  'ERR_BLOB_CORRUPT',
  'ERR_CLAIM_CHECK_FORGED',
  'ERR_PAYLOAD_TOO_LARGE',
  'ERR_HISTORY_LIMIT',
  // monitoring and incident response
  'ERR_TASK_BLOCKED',
  'ERR_KILL_REFUSED',
  'ERR_MONITOR_RECORD_INVALID',
  /** A task results file the user named (`warden baseline learn --from`) cannot be read or holds no task results (exit 2). */
  'ERR_TASK_RESULTS_FILE_INVALID',
  'ERR_MONITOR_TREE_UNKNOWN',
  'ERR_ALERT_WEBHOOK_FAILED',
  // attestation (claims verified, envelopes and receipts checked offline)
  'ERR_ATTESTATION_MALFORMED',
  'ERR_ATTESTATION_PAYLOAD_TYPE',
  'ERR_ATTESTATION_KEY_UNKNOWN',
  'ERR_ATTESTATION_SIGNATURE',
  'ERR_ATTESTATION_SUBJECT',
  'ERR_CLAIM_INVALID',
  'ERR_RECEIPT_MALFORMED',
  'ERR_RECEIPT_PROOF',
  /** A folder an untrusted process writes (the overlay's upper folder) held a link where Warden walks: never followed (recovery/beneath.ts). */
  'ERR_LINK_IN_PATH',
  // CLI files a user names (cli/output-file.ts, regular-file.ts)
  /** A file a command was told to write (`--out`, `--export`) cannot be written there: a folder, a missing or unwritable folder (exit 2). */
  'ERR_OUTPUT_FILE_INVALID',
  /** A file a user named for a command to read cannot be read: missing, not a regular file, too large, not UTF-8 (exit 2). */
  'ERR_INPUT_FILE_UNREADABLE',
  /** `warden snapshots` / `warden rollback`: this state folder holds no recovery record of the workflow id (exit 1, as ERR_TASK_NOT_FOUND). */
  'ERR_TASK_RECORDS_NOT_FOUND',
  /** `warden rollback`: the workflow id was used by several runs with recorded changes; `--run` names one (exit 2). */
  'ERR_TASK_RUN_AMBIGUOUS',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base of every Warden failure. `details` is data for machines (field paths, limits, names). */
export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  /** False when retrying the same operation cannot succeed (bad input, denial, limits). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return Object.keys(this.details).length > 0
      ? { code: this.code, message: this.message, details: { ...this.details } }
      : { code: this.code, message: this.message };
  }
}

/** One problem found in a task file: where (`path`, dotted) and what was expected. */
export interface TaskFileIssue {
  readonly path: string;
  readonly message: string;
  /** Where in the file (1-based), when the loader could tell: printed as `file:line:column`. */
  readonly line?: number;
  readonly column?: number;
  /** The offending line of the file, printed under the issue with a caret at `column`. */
  readonly excerpt?: string;
}

/** One issue as printed: `  file:line:column: path: message`, then the offending line and a caret. */
function taskFileIssueText(file: string, issue: TaskFileIssue): string {
  // An issue of the whole file (no such file, not YAML) is the file's: `task.yaml: no such file: …`.
  if (issue.line === undefined) return `  ${file}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
  const head = `  ${file}:${issue.line}:${issue.column ?? 1}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
  if (issue.excerpt === undefined) return head;
  const gutter = String(issue.line).length;
  const caret = `${' '.repeat(Math.max(0, (issue.column ?? 1) - 1))}^`;
  return `${head}\n    ${issue.line} | ${issue.excerpt}\n    ${' '.repeat(gutter)} | ${caret}`;
}

export class TaskFileError extends WardenError {
  readonly file: string;
  readonly issues: readonly TaskFileIssue[];

  constructor(code: 'ERR_TASK_FILE_UNREADABLE' | 'ERR_TASK_FILE_INVALID', file: string, issues: readonly TaskFileIssue[], cause?: unknown) {
    const lines = issues.map((i) => taskFileIssueText(file, i));
    super(code, `${code === 'ERR_TASK_FILE_UNREADABLE' ? 'cannot read task file' : 'invalid task file'} ${file}\n${lines.join('\n')}`, {
      details: { file, issues },
      cause,
    });
    this.file = file;
    this.issues = issues;
  }
}

export class PermissionDeniedError extends WardenError {}
export class ToolError extends WardenError {}
export class SandboxError extends WardenError {}
export class CapabilityError extends WardenError {}
export class ModelError extends WardenError {}
export class TaskLimitError extends WardenError {}
export class TemporalServerError extends WardenError {}
export class ConfigError extends WardenError {}
/** An MCP server could not be started or reached, broke the protocol, or changed its pinned tool list. */
export class McpError extends WardenError {}

/**
 * A Warden worker's lifecycle call out of order (`ERR_WORKER_STATE`): `run()` on a worker that
 * is running or has ended (run before, closed, or its start failed). A caller's misuse: nothing
 * was created or closed by the refused call, and retrying it cannot succeed.
 */
export class WorkerStateError extends WardenError {}

/** A plain `{ code, message }` as it crosses processes and Temporal payloads. */
export interface SerializedError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** The keystore on disk is unreadable, inconsistent or held by another process. */
export class KeystoreError extends WardenError {}

/** A credential or task grant failed one check; `code` names exactly which one. */
export class CredentialError extends WardenError {}

/** A delegation to a sub-agent widens, outlives or nests deeper than allowed, or a chain link is forged or broken. */
export class DelegationError extends WardenError {}

/**
 * A policy sentence the controlled-English grammar cannot read. Quotes the sentence, points at the
 * word where reading failed (1-based `column`, and a caret line in the message) and lists the
 * nearest known rule forms. A rule is never dropped or guessed.
 */
export class PolicyParseError extends WardenError {
  readonly sentence: string;
  readonly column: number;
  readonly expected: readonly string[];
  readonly suggestions: readonly string[];

  constructor(
    message: string,
    info: { sentence: string; column: number; word: string; expected: readonly string[]; suggestions: readonly string[]; source?: string },
  ) {
    super('ERR_POLICY_UNREADABLE', message, { details: { ...info } });
    this.sentence = info.sentence;
    this.column = info.column;
    this.expected = info.expected;
    this.suggestions = info.suggestions;
  }
}

/** An approver cannot be registered or used: a bad or taken name, an unreadable key file (`ERR_APPROVER_INVALID`). */
export class ApproverError extends WardenError {}

/** Policies that were read but cannot be loaded: Cedar validation failed, a pack is missing, or a request is malformed. */
export class PolicyError extends WardenError {}

/**
 * The custody ledger: verification found tampering (`ERR_CUSTODY_BROKEN`), a ledger, record, task
 * or checkpoint is missing (`ERR_CUSTODY_NOT_FOUND`), the signing key cannot be loaded or made
 * (`ERR_CUSTODY_KEY`), or an append could not be written (`ERR_CUSTODY_WRITE`, retryable).
 */
export class CustodyError extends WardenError {}

/**
 * A recovery step (overlay commit, snapshot, rollback, SQL undo, compensation) cannot proceed.
 * Conflicts name the paths or rows in `details` and are never retryable: a human decides.
 */
export class RecoveryError extends WardenError {}

/**
 * The state store: the database cannot be reached (`ERR_STATE_UNAVAILABLE`, retryable), its
 * schema is older than this code (`ERR_STATE_SCHEMA_OUTDATED`: run `warden db migrate`) or newer
 * (`ERR_STATE_SCHEMA_UNKNOWN`: this worker is too old for it), or its configuration is wrong
 * (`ERR_STATE_CONFIG`, e.g. a malformed `WARDEN_DATABASE_URL`).
 */
export class StateStoreError extends WardenError {}

/**
 * The data plane of a task (its overlay, grants and sandbox host on one worker) and the shared
 * storage behind it: the worker that held it is gone (`ERR_DATA_PLANE_LOST`), a local activity
 * meant for it ran on another worker and did nothing (`ERR_DATA_PLANE_ELSEWHERE`), shared storage is
 * missing or not shared (`ERR_SHARED_STORAGE`), an overlay is gone or differs from what the
 * task's steps wrote (`ERR_OVERLAY_MISSING`, `ERR_COMMIT_MISMATCH`), a claim-checked value is
 * missing or altered (`ERR_BLOB_MISSING`, `ERR_BLOB_CORRUPT`), a value from outside Warden (a model's
 * arguments, a tool's output) is shaped like a claim-check reference (`ERR_CLAIM_CHECK_FORGED`:
 * only Warden writes those, or they would read other tasks' blobs), or a value would exceed a Temporal
 * payload limit even after claim checks (`ERR_PAYLOAD_TOO_LARGE`). None is retryable as is.
 */
export class DataPlaneError extends WardenError {}

/**
 * Monitoring and incident response: a task was blocked (`ERR_TASK_BLOCKED`, the error of the
 * action it was blocked at), a kill was refused (`ERR_KILL_REFUSED`: not running, or the operator
 * is not authenticated), a stored baseline or alert does not parse (`ERR_MONITOR_RECORD_INVALID`), a task results file the user named holds none (`ERR_TASK_RESULTS_FILE_INVALID`),
 * a sub-agent's grant, which names its ancestors, cannot be read (`ERR_MONITOR_TREE_UNKNOWN`),
 * the alert webhook cannot be reached (`ERR_ALERT_WEBHOOK_FAILED`, retryable).
 */
export class MonitorError extends WardenError {}

/**
 * Attestation: an envelope or receipt that is malformed, signed by no trusted key, altered after
 * signing (`ERR_ATTESTATION_SIGNATURE`), or whose subject no longer matches (`ERR_ATTESTATION_SUBJECT`);
 * a claim that cannot be read (`ERR_CLAIM_INVALID`); a receipt whose custody proofs do not check.
 */
export class AttestationError extends WardenError {}
