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
import { loadPolicyEngine, type PolicyEngine } from '../policies/engine/policy-engine';
import type { PolicyRequest } from '../policies/engine/policy-request';
import { buildPolicyRequest, provenanceIndexOf, type PolicyRequestContext } from '../policies/build-policy-request';
import type { PolicyState } from '../policies/engine/policy-state';
import type { PolicyDecision } from '../policies/engine/policy-request';
import { trustedAtomsIn } from '../policies/engine/provenance';
import { seedOf, type ProvenanceSeed } from '../policies/provenance-seed';
import type { Task } from '../task/task-schema';
import type { ActivityDeps } from './index';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan, rootWorkflowIdOf, toolCallAttributes } from '../telemetry/warden-span-attributes';
import { atActivityBoundary } from './to-application-failure';

/** An earlier step as provenance needs it: what it returned and whether that is trusted data. */
export interface PriorStep {
  output: unknown;
  trust?: 'trusted' | 'untrusted';
}

/** The action to decide on and the task's counters so far. */
export interface CheckPolicyInput extends Omit<PolicyRequestContext, 'effect' | 'trustedOutputs' | 'seed'> {
  state: PolicyState;
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
}

/** Packs every task gets unless it names its own. */
export const DEFAULT_POLICY_PACKS = ['foundation'] as const;

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

/** Splits earlier outputs into trusted data and the rest. */
export function outputsByTrust(input: Pick<CheckPolicyInput, 'priorSteps' | 'priorOutputs'>): { trusted: unknown[]; untrusted: unknown[] } {
  if (input.priorSteps === undefined) return { trusted: [], untrusted: input.priorOutputs };
  const trusted: unknown[] = [];
  const untrusted: unknown[] = [];
  for (const step of input.priorSteps) (step.trust === 'trusted' ? trusted : untrusted).push(step.output);
  return { trusted, untrusted };
}

export function createCheckPolicy(_deps: ActivityDeps) {
  return async function checkPolicy(input: CheckPolicyInput): Promise<PolicyCheck> {
    return atActivityBoundary(async () => {
      const engine = policyEngineFor(input.task);
      const { trusted, untrusted } = outputsByTrust(input);
      const context: PolicyRequestContext = {
        task: input.task,
        workflowId: input.workflowId,
        depth: input.depth,
        chain: input.chain,
        tool: input.tool,
        args: input.args,
        priorOutputs: untrusted,
        trustedOutputs: trusted,
        ...(input.seed === undefined ? {} : { seed: input.seed }),
        effect: undefined,
        now: input.now,
      };
      const request = buildPolicyRequest(context);
      const decision = engine.decide(request, input.state);
      annotateActiveSpan({
        ...toolCallAttributes(input.task, rootWorkflowIdOf(input.workflowId), input.workflowId, input.tool, input.args),
        [WARDEN_ATTR.policyDecision]: decision.decision,
        [WARDEN_ATTR.policyRules]: decision.matched.map((m) => `${m.id} ${m.effect}: ${m.sentence}`),
        ...(decision.shadow === undefined ? {} : { [WARDEN_ATTR.policyShadow]: decision.shadow.matched.map((m) => `${m.id} ${m.effect}: ${m.sentence}`) }),
      });
      if (!input.tool.startsWith('spawn:')) return { decision, request };
      // A sub-agent starts from the root user's values; what its parent wrote into its intent is
      // trusted only where the parent had it from trusted data.
      const seed = seedOf(input.task, input.seed);
      const intent = typeof input.args.intent === 'string' ? input.args.intent : '';
      const inherited = trustedAtomsIn(provenanceIndexOf(context), intent);
      return { decision, request, inherit: { userTexts: seed.userTexts, trustedAtoms: [...new Set([...seed.trustedAtoms, ...inherited])].sort() } };
    });
  };
}
