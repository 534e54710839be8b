/**
 * What every model driver shares, whatever the provider's wire format: the system prompt, the
 * tools offered as functions (with Warden tool names mapped to function names and back), the
 * conversation rebuilt from the step records, decoding the model's function calls into actions,
 * token usage, and removing the driver's secrets from everything a turn carries.
 *
 * Invariants:
 * - The conversation is a pure function of the driver input: the same history always produces
 *   the same transcript (replays and tests compare it byte for byte).
 * - A model's answer is untrusted: it is validated for shape only. A tool name the model made up
 *   is decoded and passed on; permissions are decided by the workflow, not here.
 * - No secret of the driver (API key, auth header values) survives in a turn: `finishTurn`
 *   replaces it, and any 8-character run of it, everywhere in the returned value.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ModelError } from '../errors';
import { redactSecrets } from '../secrets/redact-values';
import type { Action, ModelTurn, ModelUsage, StepRecord } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { DriverInput, ToolSpec } from './model-driver';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import { CLAIMS_GUIDANCE, STATE_CLAIM_FUNCTION, claimActionOf, pastClaimCalls, stateClaimFunction } from './state-claim-function';
import { cutText } from '../cut-text';

/** Function names every provider accepts (OpenAI's rule; Anthropic's is wider). */
export const FUNCTION_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
/** The function the model calls to finish: `{ answer: string, claims: (string | claim object)[] }`. */
export const FINAL_ANSWER_FUNCTION = 'final_answer';
/** The function the model calls to start a sub-agent: `{ name, intent? }`. */
export const SPAWN_SUBAGENT_FUNCTION = 'spawn_subagent';

const RESERVED_FUNCTIONS: ReadonlySet<string> = new Set([FINAL_ANSWER_FUNCTION, SPAWN_SUBAGENT_FUNCTION, STATE_CLAIM_FUNCTION]);

/**
 * Maps a Warden tool name to a function name.
 *
 * - Every "." becomes "__": `fs.read` → `fs__read`, `acme.crm.lookup` → `acme__crm__lookup`.
 *   Names allowed by the task schema need nothing else as long as the result fits 64 characters.
 * - A name that still does not fit (too long, empty, or holding characters outside
 *   `[a-zA-Z0-9_-]`, which only a model-invented name from the history can) keeps its first 51
 *   characters with the others replaced by "_", followed by "_" and 12 hex digits of the SHA-256
 *   of the original name, so distinct names stay distinct and the result always fits.
 *
 * Tool names may themselves contain "__", so the rule alone is not reversible: drivers decode
 * through the table of the names they offered and fall back to {@link decodeToolName}.
 */
export function encodeToolName(tool: string): string {
  const plain = tool.replaceAll('.', '__');
  if (FUNCTION_NAME_PATTERN.test(plain)) return plain;
  const digest = createHash('sha256').update(tool).digest('hex').slice(0, 12);
  return `${plain.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 51)}_${digest}`;
}

/** The inverse rule for function names the driver did not offer: every "__" becomes ".". */
export function decodeToolName(functionName: string): string {
  return functionName.replaceAll('__', '.');
}

// ---------------------------------------------------------------------------------------------
// Secrets: one redaction for the drivers and the sandbox host (secrets/redact-values.ts).

export { redactSecret, redactSecrets } from '../secrets/redact-values';

// ---------------------------------------------------------------------------------------------
// Request side

/** A function offered to the model, in the provider-neutral form every adapter maps. */
export interface OfferedFunction {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface OfferedFunctions {
  functions: OfferedFunction[];
  /** Function name → tool name, for the tools offered this turn. */
  decode: ReadonlyMap<string, string>;
}

/** The system prompt: who the agent works for, how to finish, and the task's own instructions. */
export function systemPrompt(task: Task, canSpawn: boolean): string {
  const lines = [
    `You are an AI agent acting on behalf of the user "${task.user}".`,
    "Work on the user's request by calling the tools provided. Every call is checked against the permissions the user granted; a call that is not allowed is denied and its result says why.",
    ...(canSpawn ? [`You may hand part of the work to a sub-agent with ${SPAWN_SUBAGENT_FUNCTION}.`] : []),
    CLAIMS_GUIDANCE,
    `When you are done, call ${FINAL_ANSWER_FUNCTION} with "answer" (your answer to the user) and "claims" (short factual statements about what you did; they will be verified).`,
  ];
  const instructions = task.agent.instructions?.trim();
  return instructions ? `${lines.join('\n')}\n\n${instructions}` : lines.join('\n');
}

/**
 * The task's tools, the spawn function (when there are sub-agents) and the final-answer function.
 * @throws ModelError `ERR_MODEL_CONFIG` when two tools map to one function name.
 */
export function offeredFunctions(input: DriverInput): OfferedFunctions {
  const decode = new Map<string, string>();
  const functions: OfferedFunction[] = [];
  for (const spec of input.tools) {
    const name = encodeToolName(spec.name);
    // A collision would make the model's choice ambiguous; refuse rather than guess.
    const other = decode.get(name);
    if (RESERVED_FUNCTIONS.has(name) || other !== undefined) {
      const clash = other === undefined ? `the reserved function "${name}"` : other === spec.name ? 'the same tool offered twice' : `tool "${other}"`;
      throw new ModelError('ERR_MODEL_CONFIG', `tool "${spec.name}" cannot be offered to the model: its function name "${name}" clashes with ${clash}`, {
        details: { tool: spec.name, functionName: name },
      });
    }
    decode.set(name, spec.name);
    functions.push(toolFunction(spec, name));
  }
  if (input.subagents.length > 0) functions.push(spawnFunction(input.subagents));
  functions.push(stateClaimFunction());
  functions.push(finalAnswerFunction());
  return { functions, decode };
}

function toolFunction(spec: ToolSpec, name: string): OfferedFunction {
  return { name, description: spec.description, parameters: spec.inputSchema };
}

function spawnFunction(subagents: DriverInput['subagents']): OfferedFunction {
  const list = subagents.map((s) => `${s.name}: ${s.intent}`).join('; ');
  return {
    name: SPAWN_SUBAGENT_FUNCTION,
    description: `Start a sub-agent to do part of the work and get its result. Sub-agents: ${list}.`,
    parameters: {
      type: 'object',
      properties: {
        name: { type: 'string', enum: subagents.map((s) => s.name), description: 'Which sub-agent to start.' },
        intent: { type: 'string', description: 'What to ask the sub-agent to do; leave out to use its declared purpose.' },
      },
      required: ['name'],
      additionalProperties: false,
    },
  };
}

function finalAnswerFunction(): OfferedFunction {
  return {
    name: FINAL_ANSWER_FUNCTION,
    description: 'Finish the task with your answer to the user.',
    parameters: {
      type: 'object',
      properties: {
        answer: { type: 'string', description: 'Your answer to the user.' },
        claims: {
          type: 'array',
          items: { anyOf: [{ type: 'string' }, { type: 'object' }] },
          description: `Short factual statements about what you did, or structured claims as ${STATE_CLAIM_FUNCTION} takes them.`,
        },
      },
      required: ['answer', 'claims'],
      additionalProperties: false,
    },
  };
}

/** One function call of a past turn, as the model made it. */
export interface PastCall {
  id: string;
  name: string;
  /** The arguments as a JSON object text. */
  arguments: string;
  /** The same arguments as an object (Anthropic sends objects, not text). */
  input: Record<string, unknown>;
}

/** One past model turn: the calls it made, and one result per call (same order, same ids). */
export interface PastTurn {
  calls: PastCall[];
  results: { id: string; content: string }[];
}

/**
 * Rebuilds the conversation from the step records and the claims stated with `state_claim`: per
 * past turn, its calls (the turn's steps, then its claims, which are not steps) and their results.
 * Call ids come from the model but must be unique in a transcript (and, with `idPattern`, match
 * the provider's rule), so a repeated, missing or unusable id is replaced deterministically.
 */
export function pastTurns(steps: readonly StepRecord[], idPattern?: RegExp, claims?: readonly StatedClaimRecord[]): PastTurn[] {
  const entries = [
    ...steps.map((step) => ({ turn: step.turn, order: 0, index: step.index, step })),
    ...pastClaimCalls(claims).map((claim, index) => ({ turn: claim.turn, order: 1, index, claim })),
  ].sort((a, b) => a.turn - b.turn || a.order - b.order || a.index - b.index);
  const used = new Set<string>();
  const turns: PastTurn[] = [];
  let turn: number | undefined;
  let current: PastTurn | undefined;
  for (const entry of entries) {
    if (entry.turn !== turn || current === undefined) {
      turn = entry.turn;
      current = { calls: [], results: [] };
      turns.push(current);
    }
    if ('step' in entry) {
      const id = uniqueCallId(entry.step, used, idPattern);
      current.calls.push({ id, ...functionCallOf(entry.step) });
      current.results.push({ id, content: resultOf(entry.step) });
    } else {
      const claim = entry.claim;
      const usable = claim.callId !== undefined && claim.callId !== '' && !used.has(claim.callId) && (idPattern === undefined || idPattern.test(claim.callId));
      let id = usable ? claim.callId! : `claim_${entry.index}`;
      for (let n = 1; used.has(id); n++) id = `claim_${entry.index}_${n}`;
      used.add(id);
      current.calls.push({ id, name: STATE_CLAIM_FUNCTION, arguments: JSON.stringify(claim.arguments), input: claim.arguments });
      current.results.push({ id, content: claim.result });
    }
  }
  return turns;
}

function uniqueCallId(step: StepRecord, used: Set<string>, idPattern: RegExp | undefined): string {
  const usable = step.callId !== undefined && step.callId !== '' && !used.has(step.callId) && (idPattern === undefined || idPattern.test(step.callId));
  let id = usable ? step.callId! : `call_${step.index}`;
  for (let n = 1; used.has(id); n++) id = `call_${step.index}_${n}`;
  used.add(id);
  return id;
}

function functionCallOf(step: StepRecord): Omit<PastCall, 'id'> {
  if (step.kind === 'spawn') {
    const name = step.tool.startsWith('spawn:') ? step.tool.slice('spawn:'.length) : step.tool;
    const intent = step.args['intent'];
    const input = typeof intent === 'string' ? { name, intent } : { name };
    return { name: SPAWN_SUBAGENT_FUNCTION, arguments: JSON.stringify(input), input };
  }
  return { name: encodeToolName(step.tool), arguments: JSON.stringify(step.args), input: step.args };
}

function resultOf(step: StepRecord): string {
  if (step.decision === 'deny') return JSON.stringify({ denied: step.reason });
  if (step.error) return JSON.stringify({ error: { code: step.error.code, message: step.error.message } });
  return JSON.stringify({ output: step.output ?? null });
}

// ---------------------------------------------------------------------------------------------
// Response side

/** A function call in a model's answer, as each adapter extracts it. */
export interface ModelCall {
  id?: string | undefined;
  name: string;
  /** JSON text (OpenAI) or an object (Anthropic, some compatible servers); absent means `{}`. */
  arguments?: string | Record<string, unknown> | undefined;
}

const FinalArgsSchema = z.object({ answer: z.string(), claims: z.array(z.union([z.string(), z.record(z.string(), z.unknown())])).default([]) });
const SpawnArgsSchema = z.object({ name: z.string().min(1), intent: z.string().optional() });

/** A name from the model, safe to quote in a message. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 64 ? `${cutText(name, 64)}...` : name);
}

function protocolError(message: string): ModelError {
  return new ModelError('ERR_MODEL_PROTOCOL', message);
}

function parseArguments(call: ModelCall): Record<string, unknown> {
  const raw = call.arguments;
  if (raw === undefined) return {};
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return {};
    try {
      value = JSON.parse(raw);
    } catch {
      throw protocolError(`the model called ${quoted(call.name)} with arguments that are not JSON`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocolError(`the model called ${quoted(call.name)} with arguments that are not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The action a function call asks for: the final answer, a spawn, or a tool call.
 * @throws ModelError `ERR_MODEL_PROTOCOL` for arguments that are not a JSON object, or a final
 *   answer / spawn without its required fields.
 */
export function actionOf(call: ModelCall, decode: ReadonlyMap<string, string>): Action {
  const name = call.name;
  const args = parseArguments(call);
  const callId = call.id !== undefined && call.id !== '' ? { callId: call.id } : {};
  if (name === FINAL_ANSWER_FUNCTION) {
    const parsed = FinalArgsSchema.safeParse(args);
    if (!parsed.success) throw protocolError(`the model called ${FINAL_ANSWER_FUNCTION} without a string "answer" and "claims" (strings or claim objects)`);
    return { type: 'final', answer: parsed.data.answer, claims: parsed.data.claims };
  }
  if (name === STATE_CLAIM_FUNCTION) return claimActionOf(args, call.id);
  if (name === SPAWN_SUBAGENT_FUNCTION) {
    const parsed = SpawnArgsSchema.safeParse(args);
    if (!parsed.success) throw protocolError(`the model called ${SPAWN_SUBAGENT_FUNCTION} without a string "name"`);
    // An empty intent means "the declared one", like a missing one.
    const intent = parsed.data.intent ? { intent: parsed.data.intent } : {};
    return { type: 'spawn', subagent: parsed.data.name, ...intent, ...callId };
  }
  return { type: 'tool', tool: decode.get(name) ?? decodeToolName(name), args, ...callId };
}

/** What an adapter read from one answer, before the shared rules make it a turn. */
export interface ModelAnswer {
  calls: ModelCall[];
  /** The answer's text, if any. */
  text?: string | undefined;
  /** The model's refusal text, if the provider reports one apart from the text. */
  refusal?: string | undefined;
  /** The model that answered, as the provider names it. */
  model?: string | undefined;
  usage?: ModelUsage | undefined;
  /** Why the model stopped, in the provider's words (`tool_calls`, `end_turn`, `max_tokens`...). */
  stopReason?: string | undefined;
}

/**
 * The turn an answer makes: its calls as actions (plain text with no call is the final answer,
 * as most models say "done"), the model and the usage. Every secret is removed from the result.
 * @throws ModelError `ERR_MODEL_PROTOCOL` for an answer with neither a call nor text, or a bad call.
 */
export function finishTurn(answer: ModelAnswer, context: { decode: ReadonlyMap<string, string>; modelId: string; version: string; secrets: readonly (string | undefined)[] }): ModelTurn {
  let actions = answer.calls.map((call) => actionOf(call, context.decode));
  const text = answer.text !== undefined && answer.text !== '' ? answer.text : undefined;
  if (actions.length === 0) {
    const final = text ?? answer.refusal ?? '';
    if (final === '') throw protocolError(`model "${context.modelId}" answered with neither a tool call nor text${answer.stopReason ? ` (stop reason: ${answer.stopReason})` : ''}`);
    actions = [{ type: 'final', answer: final, claims: [] }];
  }
  const turn: ModelTurn = {
    actions,
    model: { id: answer.model || context.modelId, version: context.version },
    ...(text === undefined ? {} : { text }),
    ...(answer.usage === undefined ? {} : { usage: answer.usage }),
  };
  return redactSecrets(turn, context.secrets);
}
