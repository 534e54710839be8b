/**
 * Warden's span attributes: which task, user, intent, agent, model, prompt, tool, arguments and
 * credential an effect belongs to, what it touched and how it ended, in the OpenTelemetry GenAI
 * conventions' terms (`gen_ai.*`) where they have one and `warden.*` where they do not. Set on
 * the spans a task's activities run in (`chat <model>`, `execute_tool <tool>`,
 * `check_policy <tool>`, see `gen-ai-spans.ts`); set on the active span, so without tracing (no
 * active span) this costs nothing.
 *
 * Invariant: only ids and hashes of secrets are set, never a token: the credential appears as
 * its `jti`. (The ledger's deny-list and JWS scrubbing are the second line, not the first.)
 */
import { trace, type AttributeValue } from '@opentelemetry/api';
import { ApplicationFailure } from '@temporalio/common';
import { canonicalSha256 } from '../custody/canonical-json';
import { GEN_AI_ATTR, GEN_AI_OPERATION, OTEL_ATTR, WARDEN_ATTR, WARDEN_OPERATION } from '../custody/attributes';
import { WardenError } from '../errors';
import { parseScope } from '../identity/call-scope';
import { hashIntent } from '../identity/intent-hash';
import type { ModelTurn } from '../task/task-run';
import type { Model, Task } from '../task/task-schema';
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

/** What a task says about whom and what for: task id, user, intent hash, agent, model version (Warden's own attributes). */
export function taskAttributes(task: Task, rootWorkflowId: string, workflowId: string): Attributes {
  return {
    [WARDEN_ATTR.taskId]: rootWorkflowId,
    [WARDEN_ATTR.user]: task.user,
    // Hex, as every hash attribute; the grant's `intent_hash` is the same digest prefixed `sha256:`.
    [WARDEN_ATTR.intentSha256]: hashIntent(task.intent).replace(/^sha256:/, ''),
    [WARDEN_ATTR.agentId]: `agent:${task.agent.name}@${workflowId}`,
    [WARDEN_ATTR.modelVersion]: task.agent.model.version,
  };
}

/**
 * `gen_ai.provider.name` of a model block: the provider whose API the driver speaks (the GenAI
 * conventions ask for the client's best knowledge: an OpenAI-compatible endpoint is `openai`,
 * whoever hosts it). The scripted stand-in is `warden.scripted`; an unknown driver is named as is.
 */
export function providerNameOf(model: Pick<Model, 'driver'>): string {
  const driver: string = model.driver;
  if (driver === 'openai-compatible' || driver === 'openai') return 'openai';
  if (driver === 'anthropic') return 'anthropic';
  if (driver === 'scripted') return 'warden.scripted';
  return driver;
}

/** `server.address` and `server.port` of a model reached over HTTP (`baseUrl`), else nothing. */
export function modelServerAttributes(model: Model): Attributes {
  const baseUrl = (model as { baseUrl?: unknown }).baseUrl;
  if (typeof baseUrl !== 'string') return {};
  try {
    const url = new URL(baseUrl);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    return { [OTEL_ATTR.serverAddress]: url.hostname.replace(/^\[|\]$/g, ''), [OTEL_ATTR.serverPort]: port };
  } catch {
    return {};
  }
}

/** GenAI attributes of the agent a span works for: name, id (its workflow id), conversation (the task). */
export function agentAttributes(task: Task, rootWorkflowId: string, workflowId: string): Attributes {
  return {
    [GEN_AI_ATTR.agentName]: task.agent.name,
    [GEN_AI_ATTR.agentId]: workflowId,
    [GEN_AI_ATTR.conversationId]: rootWorkflowId,
  };
}

/** Attributes of a model call known before it is made: a GenAI `chat` (the prompt hash is added once the prompt is built). */
export function modelCallAttributes(task: Task, rootWorkflowId: string, workflowId: string): Attributes {
  return {
    ...taskAttributes(task, rootWorkflowId, workflowId),
    ...agentAttributes(task, rootWorkflowId, workflowId),
    [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.chat,
    [GEN_AI_ATTR.providerName]: providerNameOf(task.agent.model),
    [GEN_AI_ATTR.requestModel]: task.agent.model.id,
    ...modelServerAttributes(task.agent.model),
  };
}

/** Hash of the exact prompt context sent to the model (`warden.prompt.sha256`). */
export function promptAttributes(driverInput: unknown): Attributes {
  return { [WARDEN_ATTR.promptSha256]: sha256OfJson(driverInput) };
}

const nonNegativeInt = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined);
const nonEmptyString = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * Token usage a driver reported for one turn, read tolerantly from the turn (`usage` with
 * `inputTokens`/`outputTokens`, or the providers' `input_tokens`/`output_tokens`,
 * `prompt_tokens`/`completion_tokens`): a turn without usage yields nothing, never zeros.
 */
export function usageOfTurn(turn: unknown): { inputTokens?: number; outputTokens?: number } {
  const usage = (turn as { usage?: unknown } | null)?.usage;
  if (typeof usage !== 'object' || usage === null) return {};
  const u = usage as Record<string, unknown>;
  const inputTokens = nonNegativeInt(u.inputTokens) ?? nonNegativeInt(u.input_tokens) ?? nonNegativeInt(u.promptTokens) ?? nonNegativeInt(u.prompt_tokens);
  const outputTokens = nonNegativeInt(u.outputTokens) ?? nonNegativeInt(u.output_tokens) ?? nonNegativeInt(u.completionTokens) ?? nonNegativeInt(u.completion_tokens);
  return { ...(inputTokens === undefined ? {} : { inputTokens }), ...(outputTokens === undefined ? {} : { outputTokens }) };
}

/**
 * What the model's answer says about itself: `gen_ai.response.model` (the model the driver says
 * answered), `gen_ai.response.id` and `gen_ai.response.finish_reasons` when the driver passes them
 * on (`responseId`/`finishReasons`, or `response: { id, finishReasons }`), and token usage.
 */
export function modelResponseAttributes(turn: ModelTurn): Attributes {
  const loose = turn as ModelTurn & { responseId?: unknown; finishReasons?: unknown; response?: { id?: unknown; finishReasons?: unknown; model?: unknown } };
  const responseId = nonEmptyString(loose.responseId) ?? nonEmptyString(loose.response?.id);
  const reasons = loose.finishReasons ?? loose.response?.finishReasons;
  const finishReasons = Array.isArray(reasons) ? reasons.filter((r): r is string => typeof r === 'string') : typeof reasons === 'string' ? [reasons] : undefined;
  const usage = usageOfTurn(turn);
  return {
    [GEN_AI_ATTR.responseModel]: nonEmptyString(loose.response?.model) ?? turn.model.id,
    [GEN_AI_ATTR.responseId]: responseId,
    [GEN_AI_ATTR.responseFinishReasons]: finishReasons !== undefined && finishReasons.length > 0 ? finishReasons : undefined,
    [GEN_AI_ATTR.usageInputTokens]: usage.inputTokens,
    [GEN_AI_ATTR.usageOutputTokens]: usage.outputTokens,
  };
}

/** Attributes of a tool call: a GenAI `execute_tool` with its arguments hashed and the model's call id when it gave one. */
export function toolCallAttributes(task: Task, rootWorkflowId: string, workflowId: string, tool: string, args: unknown, modelCallId?: string): Attributes {
  const descriptor = resolveTool(task, tool);
  return {
    ...taskAttributes(task, rootWorkflowId, workflowId),
    ...agentAttributes(task, rootWorkflowId, workflowId),
    [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.executeTool,
    [GEN_AI_ATTR.toolName]: tool,
    // Every Warden tool, built-in or the user's, is a function the model asks the agent side to run.
    [GEN_AI_ATTR.toolType]: 'function',
    [GEN_AI_ATTR.toolDescription]: descriptor?.description,
    [GEN_AI_ATTR.toolCallId]: modelCallId,
    [WARDEN_ATTR.toolArgsSha256]: sha256OfJson(args),
    ...descriptorAttributes(descriptor),
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

/**
 * Attributes of a policy check: Warden's `check_policy` operation, deliberately without any
 * `gen_ai.*` operation or tool attribute (it is not a tool execution, and must not count as one).
 */
export function policyCheckAttributes(task: Task, rootWorkflowId: string, workflowId: string, tool: string, args: unknown): Attributes {
  return {
    ...taskAttributes(task, rootWorkflowId, workflowId),
    [WARDEN_ATTR.operationName]: WARDEN_OPERATION.checkPolicy,
    [WARDEN_ATTR.policyTool]: tool,
    [WARDEN_ATTR.toolArgsSha256]: sha256OfJson(args),
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
