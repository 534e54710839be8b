/**
 * Which of Warden's error codes are refusals: a guard stopped an action it will not do (a path
 * outside the workspace, a host the egress policy denies, a capability, database or program the
 * task's grants do not cover, the sandbox's policy gate, a quota), as opposed to failures (a tool
 * threw, a server could not be reached, the sandbox crashed). A refusal is an expected outcome:
 * the task reports it in its step, and the views say who refused it; a failure may need someone to
 * look at the worker.
 *
 * Plain data, no imports but types: workflow code and every view may import it.
 */
import type { ErrorCode } from './errors';

/** The codes a guard inside the tool call (its capabilities, its sandbox, its input check) refuses with. */
export const REFUSAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  // permissions
  'ERR_TOOL_NOT_GRANTED',
  'ERR_SUBAGENT_NOT_GRANTED',
  'ERR_RESOURCE_PROTECTED',
  // the tool's input against its schema
  'ERR_TOOL_INPUT_INVALID',
  // programs and the workspace's bounds
  'ERR_COMMAND_NOT_GRANTED',
  'ERR_WORKSPACE_QUOTA',
  // capabilities handed to tools
  'ERR_PATH_OUTSIDE_WORKSPACE',
  'ERR_NETWORK_DENIED',
  'ERR_DATABASE_NOT_GRANTED',
  'ERR_SQL_DENIED',
  'ERR_CAPABILITY_NOT_GRANTED',
  // the sandbox's policy gate on a capability call, and approvals of what it held
  'ERR_POLICY_DENIED',
  'ERR_APPROVAL_DENIED',
  'ERR_APPROVAL_TIMEOUT',
  // a per-call credential the tool's guard would not accept
  'ERR_CREDENTIAL_SCOPE',
  'ERR_CREDENTIAL_EXPIRED',
  'ERR_CREDENTIAL_REVOKED',
  'ERR_CREDENTIAL_REPLAYED',
  // data a model or tool forged, or past the payload limit
  'ERR_CLAIM_CHECK_FORGED',
  'ERR_PAYLOAD_TOO_LARGE',
]);

/** Whether `code` is one of {@link REFUSAL_CODES} (any value: codes cross process boundaries as strings). */
export function isRefusalCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && REFUSAL_CODES.has(code as ErrorCode);
}
