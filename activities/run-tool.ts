/**
 * Runs one granted tool call in the sandbox host. Arguments are validated against the tool's
 * schema first; the call gets only the capabilities the tool declares, narrowed to the task's
 * grants, and a fresh isolate with the task's time and memory limits.
 */
import { realpath } from 'node:fs/promises';
import { CapabilityError, CredentialError, isErrorCode, ToolError } from '../errors';
import { mintCallCredential } from '../identity/credential';
import { scopeOfCall } from '../tools/call-scope';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';
import { capabilityGrantFor, resolveTool } from '../tools/tool-catalog';
import { validateToolInput } from '../tools/tool-input-validator';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';

/** Largest JSON output a tool may return into the workflow history. */
export const MAX_TOOL_OUTPUT_BYTES = 1024 * 1024;

export interface RunToolInput {
  workflowId: string;
  stepIndex: number;
  /** The task grant the call's credential is minted from. */
  grantId: string;
  /** Upper bound of the credential's lifetime (the activity's timeout). */
  maxCredentialTtlMs: number;
  task: Task;
  tool: string;
  args: Record<string, unknown>;
}

async function workspaceRootOf(task: Task): Promise<string | undefined> {
  if (task.resources.workspace === undefined) return undefined;
  try {
    return await realpath(task.resources.workspace);
  } catch (cause) {
    throw new CapabilityError('ERR_PATH_NOT_FOUND', `workspace ${task.resources.workspace} does not exist`, { cause });
  }
}

/** What a tool call returns to the workflow: its output and the credential it ran under (no token). */
export interface ToolCallResult {
  output: unknown;
  credential: { jti: string; scope: string[]; expiresAt: string };
}

export function createRunTool(deps: ActivityDeps) {
  return async function runTool(input: RunToolInput): Promise<ToolCallResult> {
    return atActivityBoundary(async () => {
      const tool = resolveTool(input.task, input.tool);
      if (tool === undefined) throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${input.tool}" is not declared by this task`);
      const problems = validateToolInput(tool.inputSchema, input.args);
      if (problems.length > 0) {
        throw new ToolError(
          'ERR_TOOL_INPUT_INVALID',
          `arguments of ${tool.name} are invalid: ${problems.map((p) => `${p.path === '' ? '(arguments)' : p.path} ${p.message}`).join('; ')}`,
          { details: { problems } },
        );
      }
      if (deps.identity === undefined) throw new TypeError('this worker was created without identity services');
      const grant = deps.identity.stores.grants.getGrant(input.grantId);
      if (grant === undefined) throw new CredentialError('ERR_CREDENTIAL_REVOKED', `grant ${input.grantId} is unknown to this worker`);
      const credential = await mintCallCredential(deps.identity.keystore, grant.token, {
        tool: tool.name,
        scope: scopeOfCall(tool.name, input.args),
        maxTtlMs: input.maxCredentialTtlMs,
      });
      const workspaceRoot = tool.capabilities.some((c) => c.startsWith('fs.')) ? await workspaceRootOf(input.task) : undefined;
      const result = await deps.sandbox.run({
        toolName: tool.name,
        source: tool.source,
        input: input.args,
        limits: {
          timeoutMs: durationToMs(tool.timeout ?? input.task.limits.toolTimeout),
          memoryMb: Math.min(tool.memoryMb ?? input.task.limits.toolMemoryMb, input.task.limits.toolMemoryMb),
          maxOutputBytes: MAX_TOOL_OUTPUT_BYTES,
        },
        capabilities: capabilityGrantFor(input.task, tool, workspaceRoot),
        credential: credential.token,
      });
      if (!result.ok) {
        const code = isErrorCode(result.error.code) ? result.error.code : 'ERR_TOOL_THREW';
        throw new ToolError(code, result.error.message);
      }
      return {
        output: result.output,
        credential: { jti: credential.claims.jti, scope: credential.claims.scope, expiresAt: new Date(credential.claims.exp * 1000).toISOString() },
      };
    });
  };
}
