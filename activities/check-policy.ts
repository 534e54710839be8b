/**
 * The controls layer before an action runs: builds the policy request of the proposed call from
 * its tool's descriptor (which arguments carry recipients, payees, amounts, URLs, paths, SQL),
 * classifies where each argument value came from (the user's words and declared values, trusted
 * data, or tool outputs from outside) and asks the policy engine.
 *
 * Invariant: rules about effects are decided on the effect Warden measured, never on what the
 * agent says it will do. Effects only the executor can measure (rows a statement changes,
 * cascades and triggers included; what a tool's capabilities touch) are `pending` here and
 * decided by the same engine where they are applied, in the sandbox host (sandbox/policy-gate.ts),
 * before they take effect. No agent SQL runs in the worker.
 */
import { hash, randomUUID } from 'node:crypto';
import { loadPolicyEngine, type PolicyEngine } from '../policies/engine/policy-engine';
import type { PolicyRequest, ToolEffect } from '../policies/engine/policy-request';
import { buildPolicyRequest, type PolicyRequestContext } from '../policies/build-policy-request';
import type { PolicyState } from '../policies/engine/policy-state';
import type { PolicyDecision } from '../policies/engine/policy-request';
import { hasLeaves, indexToolOutput, indexTrustedData, trustedAtomsIn, type IndexedTexts, type ProvenanceIndex } from '../policies/engine/provenance';
import { ProvenanceIndexCache, type UntrustedPart } from '../policies/engine/incremental-provenance';
import { seedOf, userValuesOf, type ProvenanceSeed } from '../policies/provenance-seed';
import { realRootOf, resolveInsideWorkspace } from '../sandbox/capabilities/fs-capability';
import { DEFAULT_POLICY_PACKS, type Task } from '../task/task-schema';
import { resolveTool } from '../tools/tool-catalog';
import { realpath } from 'node:fs/promises';
import { actionGrantRefusal, credentialRefusal, grantRuleMatch, type GrantRefusal } from '../sandbox/capabilities/grant-refusal';
import { protectedSetForCall } from './protected-set';
import type { ActivityDeps } from './index';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan } from '../telemetry/warden-span-attributes';
import { atActivityBoundary } from './to-application-failure';
import { resolveClaimChecks } from '../dataplane/claim-check';
import { containsClaimCheck, isClaimCheckRef, type ClaimCheckRef } from '../task/data-refs';
import type { BlobStore } from '../dataplane/blob-store';
import type { StepRecord } from '../task/task-run';
import type { PolicyPrecheck } from '../policies/policy-precheck';

/** An earlier step as provenance needs it: what it returned and whether that is trusted data. */
export interface PriorStep {
  output: unknown;
  trust?: 'trusted' | 'untrusted';
}

/** The action to decide on and the task's counters so far. */
export interface CheckPolicyInput extends Omit<PolicyRequestContext, 'effect' | 'trustedOutputs' | 'seed' | 'priorOutputIndexes' | 'provenanceIndex'> {
  state: PolicyState;
  /**
   * The data flow's transcript head (blob-chain digest): the outputs of the steps in it are prior
   * outputs too. The workflow then sends in `priorOutputs` only the steps not in it yet (a long
   * task's earlier runs are there and nowhere else in the workflow).
   */
  priorOutputsRef?: string;
  /** Earlier steps with their trust; when given, outputs labelled trusted are trusted data (priorOutputs is then ignored). */
  priorSteps?: PriorStep[];
  /** A sub-agent's inherited provenance (from its parent's spawn). */
  seed?: ProvenanceSeed;
}

export interface PolicyCheck {
  decision: PolicyDecision;
  /** The request as evaluated (what `recordExecution` needs after the call ran). */
  request: PolicyRequest;
  /** For a spawn: the provenance the sub-agent starts from. */
  inherit?: ProvenanceSeed;
  /** When the decision is `approval`: the held request's id, random so nobody can name it before it exists. */
  approvalRequestId?: string;
  /**
   * For a built-in fs tool: its arguments with `path` resolved inside the workspace, the path the
   * rules judged. The call then runs on exactly that path, following no link (the decision and the
   * file opened cannot drift apart, also when a link changes while an approval waits).
   */
  resolvedArgs?: Record<string, unknown>;
  /** The longest window of the task's rate rules (ms, 0: none): recent calls older than this decide nothing (the data flow keeps no more). */
  rateWindowMs?: number;
  /** Made ahead by the activity that brought the action: what it was decided on (policies/policy-precheck.ts). */
  precheck?: PolicyPrecheck;
  /**
   * When the rules allow the call and the task's grants refuse it (sandbox/capabilities/grant-refusal.ts):
   * why. The call then runs to its capability's refusal at once; nothing may hold it for a human
   * first (the monitor's step-up, workflows/monitor-step.ts `beforeRun`).
   */
  grantRefused?: { code: string; reason: string };
}

/** Packs every task gets unless it names its own. */
export { DEFAULT_POLICY_PACKS };

const engines = new Map<string, PolicyEngine>();

/** The engine of a task's packs and sentences, compiled once per worker (and per sandbox host). */
export function policyEngineFor(task: Task): PolicyEngine {
  const packs = task.policyPacks ?? [...DEFAULT_POLICY_PACKS];
  const key = JSON.stringify([packs, task.policies]);
  let engine = engines.get(key);
  if (engine === undefined) {
    engine = loadPolicyEngine({ packs, sentences: task.policies });
    engines.set(key, engine);
  }
  return engine;
}

/** A built-in fs tool the task declares (a user tool named like one is refused when the task loads). */
function isBuiltinFsTool(task: Task, tool: string): boolean {
  return resolveTool(task, tool)?.executor.kind === 'builtin' && (tool === 'fs.read' || tool === 'fs.write' || tool === 'fs.list');
}

/**
 * Where an fs tool's path really leads inside the workspace, links followed (the sandbox resolves
 * it the same way), so path rules judge the file that would be touched, not the text naming it:
 * with `docs -> secrets`, `docs/key.txt` is `secrets/key.txt`. Undefined when there is no path or
 * it does not resolve inside the workspace (the call itself is then refused).
 */
function resolvedWorkspacePath(task: Task, tool: string, args: Record<string, unknown>): string | undefined {
  if (!tool.startsWith('fs.') || task.resources.workspace === undefined) return undefined;
  const path = args.path ?? (tool === 'fs.list' ? '.' : undefined);
  if (typeof path !== 'string') return undefined;
  try {
    return resolveInsideWorkspace(realRootOf(task.resources.workspace), path).display;
  } catch {
    return undefined;
  }
}

/** The values a decision reads: the arguments and the earlier outputs, untrusted ones as parts of the task's index. */
interface DecisionValues {
  args: Record<string, unknown>;
  /** Earlier untrusted outputs, oldest first (MCP descriptions first). */
  untrusted: UntrustedPart[];
  /** Earlier outputs the task marks as the user's own. */
  trusted: unknown[];
}

/** An earlier untrusted output as the task's index takes it: keyed by its content (its JSON; a claim check by its digest), indexed only when the index does not hold it. */
export function untrustedPartOf(output: unknown, blobs: BlobStore | undefined): UntrustedPart {
  if (blobs !== undefined && isClaimCheckRef(output)) return { key: `ref:${output.kind}:${output.sha256}`, load: () => indexOfClaimChecked(blobs, output) };
  return {
    key: `json:${JSON.stringify(output) ?? 'undefined'}`,
    load: async () => {
      const value = blobs === undefined ? output : await resolveClaimChecks(blobs, output);
      return hasLeaves(value) ? indexToolOutput(value) : undefined;
    },
  };
}

/**
 * The arguments and earlier outputs a decision reads. On the data flow, the real values:
 * claim-checked arguments resolved, and every earlier output counted (those of the steps in the
 * transcript chain, `priorOutputsRef`, i.e. of earlier runs too, as untrusted: their trust labels
 * are not carried over); a claim-checked output through its index (kept per worker by digest).
 */
async function decisionValuesOf(deps: ActivityDeps, input: CheckPolicyInput): Promise<DecisionValues> {
  const blobs = deps.dataPlane?.blobs;
  // MCP servers' tool descriptions are their words, untrusted like any tool output (a task whose
  // lists travel by digest leaves adding them to this activity: they are not in its input).
  const untrusted: unknown[] = [...pinnedDescriptionsOf(input.task)];
  const trusted: unknown[] = [];
  const dataPlane = deps.dataPlane;
  if (dataPlane === undefined || blobs === undefined) {
    const split = outputsByTrust(input);
    return { args: input.args, untrusted: [...untrusted, ...split.untrusted].map((o) => untrustedPartOf(o, undefined)), trusted: split.trusted };
  }
  if (input.priorOutputsRef !== undefined) untrusted.push(...outputsOf(await dataPlane.chains.read<StepRecord>('transcript', input.priorOutputsRef)));
  if (input.priorSteps === undefined) untrusted.push(...input.priorOutputs);
  else {
    for (const step of input.priorSteps) {
      if (step.trust === 'trusted') trusted.push(((await resolveClaimChecks(blobs, step)) as PriorStep).output);
      else untrusted.push(step.output);
    }
  }
  const args = containsClaimCheck(input.args) ? ((await resolveClaimChecks(blobs, input.args)) as Record<string, unknown>) : input.args;
  return { args, untrusted: untrusted.map((o) => untrustedPartOf(o, blobs)), trusted };
}

/**
 * Each task's provenance index, extended step by step (policies/engine/incremental-provenance.ts):
 * a check indexes only the outputs that came since the task's last check, and the user's values once.
 */
const provenanceIndexes = new ProvenanceIndexCache({ digest: (text) => hash('sha256', text) });

/** The provenance index of a decision: the user's values (the root's for a sub-agent), trusted outputs and atoms, the task's untrusted outputs. */
async function provenanceIndexFor(input: CheckPolicyInput, values: DecisionValues): Promise<ProvenanceIndex> {
  const user = input.seed?.userTexts ?? userValuesOf(input.task);
  const tools = await provenanceIndexes.toolOutputs(input.workflowId, values.untrusted);
  return {
    user: provenanceIndexes.userValues(user[0] ?? '', user.slice(1)),
    trusted: indexTrustedData(values.trusted, input.seed?.trustedAtoms ?? []),
    tools: tools.index,
  };
}

/** Provenance indexes of large untrusted outputs, by kind and digest (content-addressed: an entry never goes stale). */
const outputIndexes = new Map<string, IndexedTexts>();
let indexedChars = 0;
/** At most this many characters of indexed text are kept (least recently used go first). */
const OUTPUT_INDEX_CACHE_CHARS = 64 * 1024 * 1024;

async function indexOfClaimChecked(blobs: BlobStore, ref: ClaimCheckRef): Promise<IndexedTexts> {
  const key = `${ref.kind}:${ref.sha256}`;
  const cached = outputIndexes.get(key);
  if (cached !== undefined) {
    outputIndexes.delete(key);
    outputIndexes.set(key, cached);
    return cached;
  }
  // Read through the blob store, which verifies the content against its digest.
  const index = indexToolOutput(await resolveClaimChecks(blobs, ref));
  // Another check of the same output may have indexed it while this one read the blob.
  const raced = outputIndexes.get(key);
  if (raced !== undefined) return raced;
  outputIndexes.set(key, index);
  indexedChars += index.text.length;
  for (const [oldest, entry] of outputIndexes) {
    if (indexedChars <= OUTPUT_INDEX_CACHE_CHARS || oldest === key) break;
    outputIndexes.delete(oldest);
    indexedChars -= entry.text.length;
  }
  return index;
}

/** The resolved path of a built-in fs call as its measured path effect (the descriptor says the access). */
function resolvedPathEffect(task: Task, tool: string, args: Record<string, unknown>): { effect?: ToolEffect; resolved?: string } {
  if (!isBuiltinFsTool(task, tool)) return {};
  const resolved = resolvedWorkspacePath(task, tool, args);
  const descriptor = resolveTool(task, tool);
  const ref = descriptor?.effects.paths[0];
  if (resolved === undefined || ref === undefined) return {};
  return { resolved, effect: { paths: [{ path: resolved, access: ref.access, pointer: ref.arg }] } };
}

/** The descriptions of a task's MCP tools when its lists came by digest (`tools.mcpPins`, read back before the activity ran). */
function pinnedDescriptionsOf(task: Task): string[] {
  if (task.tools.mcpPins === undefined) return [];
  return (task.tools.mcpPinned ?? []).flatMap((listing) => listing.tools.map((t) => t.description)).filter((d) => d !== '');
}

/** Splits earlier outputs into trusted data and the rest. */
export function outputsByTrust(input: Pick<CheckPolicyInput, 'priorSteps' | 'priorOutputs'>): { trusted: unknown[]; untrusted: unknown[] } {
  if (input.priorSteps === undefined) return { trusted: [], untrusted: input.priorOutputs };
  const trusted: unknown[] = [];
  const untrusted: unknown[] = [];
  for (const step of input.priorSteps) (step.trust === 'trusted' ? trusted : untrusted).push(step.output);
  return { trusted, untrusted };
}

export function createCheckPolicy(deps: ActivityDeps) {
  return async function checkPolicy(given: CheckPolicyInput): Promise<PolicyCheck> {
    return atActivityBoundary(() => decidePolicyCheck(deps, given));
  };
}

/**
 * The decision on one proposed action, as `checkPolicy` makes it (and an activity deciding ahead,
 * activities/precheck-policy.ts): effect measured, provenance indexed, then the engine. Sets the
 * verdict on the active span.
 */
export async function decidePolicyCheck(deps: ActivityDeps, given: CheckPolicyInput): Promise<PolicyCheck> {
  const values = await decisionValuesOf(deps, given);
  const input = { ...given, args: values.args };
  const engine = policyEngineFor(input.task);
  const provenanceIndex = await provenanceIndexFor(input, values);
  const { effect, resolved } = resolvedPathEffect(input.task, input.tool, input.args);
  const context: PolicyRequestContext = {
    task: input.task,
    workflowId: input.workflowId,
    depth: input.depth,
    chain: input.chain,
    tool: input.tool,
    args: input.args,
    priorOutputs: [],
    trustedOutputs: values.trusted,
    provenanceIndex,
    ...(input.seed === undefined ? {} : { seed: input.seed }),
    effect,
    now: input.now,
    ...(input.state === undefined ? {} : { state: input.state }),
  };
  const request = buildPolicyRequest(context);
  // What the task's grants refuse is never held for a human who could only approve a call its
  // capability or credential would then refuse (sandbox/capabilities/grant-refusal.ts: the same
  // rule the sandbox host's gate asks before it holds a capability call).
  // A call its credential would refuse is refused before the rules; any other refusal of the
  // grants takes the place of a hold (where the rules allow the call, its capability refuses it).
  const descriptor = resolveTool(input.task, input.tool);
  const credential = descriptor === undefined ? undefined : credentialRefusal(input.task, descriptor, input.args);
  const ruled = credential === undefined ? engine.decide(request, input.state) : undefined;
  const refused = credential ?? (ruled?.decision === 'approval' ? await grantRefusalOf(deps, input.task, input.tool, input.args) : undefined);
  const decision: PolicyDecision = refused === undefined ? ruled! : { decision: 'deny', matched: [grantRuleMatch(refused)], reasons: [refused.reason] };
  // Allowed, and refused by the grants all the same: said, so no later hold waits on it.
  const allowedRefusal = decision.decision === 'allow' ? await grantRefusalOf(deps, input.task, input.tool, input.args) : undefined;
  const grantRefused = allowedRefusal === undefined ? {} : { grantRefused: { code: allowedRefusal.code, reason: allowedRefusal.reason } };
  // The `check_policy <tool>` span already names the task, agent and call; the verdict goes on it.
  annotateActiveSpan({
    [WARDEN_ATTR.policyDecision]: decision.decision,
    [WARDEN_ATTR.policyRules]: decision.matched.map((m) => `${m.id} ${m.effect}: ${m.sentence}`),
    ...(decision.shadow === undefined ? {} : { [WARDEN_ATTR.policyShadow]: decision.shadow.matched.map((m) => `${m.id} ${m.effect}: ${m.sentence}`) }),
  });
  const approval = decision.decision === 'approval' ? { approvalRequestId: randomUUID() } : {};
  // History keeps the arguments as the workflow sent them (long values as claim checks: the data flow).
  const recorded = given.args;
  if (!input.tool.startsWith('spawn:')) {
    return { decision, request: recorded === input.args ? request : { ...request, args: recorded }, ...approval, ...(resolved === undefined ? {} : { resolvedArgs: { ...recorded, path: resolved } }), rateWindowMs: engine.rateWindowMs, ...grantRefused };
  }
  // A sub-agent starts from the root user's values; what its parent wrote into its intent is
  // trusted only where the parent had it from trusted data.
  const seed = seedOf(input.task, input.seed);
  const intent = typeof input.args.intent === 'string' ? input.args.intent : '';
  const inherited = trustedAtomsIn(provenanceIndex, intent);
  return { decision, request, ...approval, inherit: { userTexts: seed.userTexts, trustedAtoms: [...new Set([...seed.trustedAtoms, ...inherited])].sort() } };
}

/**
 * Why the task's grants refuse the proposed call (sandbox/capabilities/grant-refusal.ts), with the
 * workspace and the protected set the call would be handed; undefined for a spawn, an undeclared
 * tool (the workflow's grant check refused it already) or a call they cover.
 */
async function grantRefusalOf(deps: ActivityDeps, task: Task, tool: string, args: Record<string, unknown>): Promise<GrantRefusal | undefined> {
  const descriptor = resolveTool(task, tool);
  if (descriptor === undefined) return undefined;
  const fs = descriptor.executor.kind === 'builtin' && descriptor.capabilities.some((c) => c.startsWith('fs.')) && task.resources.workspace !== undefined;
  if (!fs) return actionGrantRefusal(task, descriptor, args);
  // A workspace that is not there is the capability's refusal too (fsPathRefusal says so).
  const workspaceRoot = await realpath(task.resources.workspace!).catch(() => task.resources.workspace!);
  return actionGrantRefusal(task, descriptor, args, { workspaceRoot, ...(deps.stateDir === undefined ? {} : { protected: await protectedSetForCall(deps, task) }) });
}

/** The outputs of the steps that ran (what provenance counts as tools' words). */
export function outputsOf(steps: readonly StepRecord[]): unknown[] {
  return steps.filter((s) => s.executed && s.output !== undefined).map((s) => s.output);
}
