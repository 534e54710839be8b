/**
 * The Warden attributes of the activity spans a task's work runs in (`RunActivity:proposeTurn`,
 * `RunActivity:runTool`): which task, user, intent, agent, model, prompt, tool, arguments and
 * credential an effect belongs to, what it touched and how it ended. Set on the active span, so
 * without tracing (no active span) this costs nothing.
 *
 * Invariant: only ids and hashes of secrets are set, never a token: the credential appears as
 * its `jti`. (The ledger's deny-list and JWS scrubbing are the second line, not the first.)
 */
import { trace, type AttributeValue } from '@opentelemetry/api';
import { ApplicationFailure } from '@temporalio/common';
import { canonicalSha256 } from '../custody/canonical-json';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from '../custody/attributes';
import { WardenError } from '../errors';
import { parseScope } from '../identity/call-scope';
import { hashIntent } from '../identity/task-grant';
import type { Task } from '../task/task-schema';
import { resolveTool } from '../tools/tool-catalog';
import { resolvedAnnotations, type ToolDescriptor } from '../tools/tool-descriptor';

type Attributes = Record<string, AttributeValue | undefined>;

/** The root workflow id of a task from any of its workflow ids (sub-agents are `<parent>/<sub>-<n>`). */
export function rootWorkflowIdOf(workflowId: string): string {
  const slash = workflowId.indexOf('/');
  return slash === -1 ? workflowId : workflowId.slice(0, slash);
}

/** Hex SHA-256 of the canonical JSON of `value`, or undefined when it is not JSON. */
export function sha256OfJson(value: unknown): string | undefined {
  try {
    return canonicalSha256(value);
  } catch {
    return undefined;
  }
}

/** Sets the defined attributes on the active span, if there is one. */
export function annotateActiveSpan(attributes: Attributes): void {
  const span = trace.getActiveSpan();
  if (span === undefined || !span.isRecording()) return;
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) span.setAttribute(key, value);
}

/** What a task says about whom and what for: task id, user, intent hash, agent, model. */
export function taskAttributes(task: Task, rootWorkflowId: string, workflowId: string): Attributes {
  return {
    [WARDEN_ATTR.taskId]: rootWorkflowId,
    [WARDEN_ATTR.user]: task.user,
    // Hex, as every hash attribute; the grant's `intent_hash` is the same digest prefixed `sha256:`.
    [WARDEN_ATTR.intentSha256]: hashIntent(task.intent).replace(/^sha256:/, ''),
    [WARDEN_ATTR.agentId]: `agent:${task.agent.name}@${workflowId}`,
    [GEN_AI_ATTR.agentName]: task.agent.name,
    [GEN_AI_ATTR.requestModel]: task.agent.model.id,
    [WARDEN_ATTR.modelVersion]: task.agent.model.version,
  };
}

/** Attributes of a model call: a GenAI `chat` whose prompt context is `driverInput`, hashed. */
export function modelCallAttributes(task: Task, workflowId: string, driverInput: unknown): Attributes {
  return {
    ...taskAttributes(task, rootWorkflowIdOf(workflowId), workflowId),
    [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.chat,
    [WARDEN_ATTR.promptSha256]: sha256OfJson(driverInput),
  };
}

/** Attributes of a tool call: a GenAI `execute_tool` with its arguments hashed, and what its descriptor says it is. */
export function toolCallAttributes(task: Task, rootWorkflowId: string, workflowId: string, tool: string, args: unknown): Attributes {
  return {
    ...taskAttributes(task, rootWorkflowId, workflowId),
    [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.executeTool,
    [GEN_AI_ATTR.toolName]: tool,
    [WARDEN_ATTR.toolArgsSha256]: sha256OfJson(args),
    ...descriptorAttributes(resolveTool(task, tool)),
  };
}

/** Custody attributes of a tool's descriptor: executor kind, families, resolved hints, whether it declared anything and can be undone. */
export function descriptorAttributes(descriptor: ToolDescriptor | undefined): Attributes {
  if (descriptor === undefined) return {};
  const hints = Object.entries(resolvedAnnotations(descriptor))
    .filter(([, on]) => on)
    .map(([hint]) => hint);
  return {
    [WARDEN_ATTR.toolExecutor]: descriptor.executor.kind,
    [WARDEN_ATTR.toolFamilies]: [...descriptor.profile.families],
    [WARDEN_ATTR.toolHints]: hints,
    [WARDEN_ATTR.toolDeclared]: descriptor.profile.declared,
    [WARDEN_ATTR.toolUndoable]: descriptor.profile.undoable,
  };
}

/** Files, hosts and databases a call's scope strings name (`warden.resources.*`). */
export function resourceAttributes(scope: readonly string[]): Attributes {
  const files: string[] = [];
  const hosts: string[] = [];
  const tables: string[] = [];
  for (const entry of scope) {
    let parsed;
    try {
      parsed = parseScope(entry);
    } catch {
      continue;
    }
    if (parsed.host !== undefined) hosts.push(parsed.host);
    // The scope names the database, not single tables: `warden.resources.tables` holds `db:<name>`.
    else if (parsed.database !== undefined) tables.push(`db:${parsed.database}`);
    else if (parsed.action.startsWith('fs.')) files.push(parsed.resource);
  }
  return {
    [WARDEN_ATTR.resourcesFiles]: files.length > 0 ? files : undefined,
    [WARDEN_ATTR.resourcesHosts]: hosts.length > 0 ? hosts : undefined,
    [WARDEN_ATTR.resourcesTables]: tables.length > 0 ? tables : undefined,
  };
}

/** `warden.outcome` of a failure: its stable error code (`ERR_*`), else `error`. */
export function outcomeOfError(error: unknown): string {
  if (error instanceof ApplicationFailure && error.type) return error.type;
  if (error instanceof WardenError) return error.code;
  return 'error';
}
