/**
 * The policy gate in the sandbox host: every capability call a tool makes (a built-in's own call,
 * or the calls a user tool makes from inside) is decided by the task's policy engine, with the
 * same descriptors and the same request builder the workflow uses, before it takes effect:
 * before a file is read or written, before a request leaves, and for SQL inside the open
 * transaction, on the rows the statement actually changed (cascades and triggers included), so
 * what is decided is what is applied.
 *
 * A denied call, or one that needs a human, stops the whole tool call: the capability throws
 * (`ERR_POLICY_DENIED`, `ERR_APPROVAL_REQUIRED`), a SQL statement rolls back, and every later
 * capability call of the same tool call is refused, so tool code cannot catch the refusal and go
 * on. The report says what was applied (for the workflow's counters) and what was stopped, with
 * a digest of the measured effect: a human's approval is bound to that digest, and a re-run with
 * it lets exactly that effect through.
 *
 * A call the rules would hold and the tool's capability grant refuses (a host it was not handed, a
 * path outside the workspace) is denied under rule `grants` instead (capabilities/grant-refusal.ts):
 * never held, never let through by an approval. One the rules allow is refused by the capability.
 *
 * Invariants: capability calls counted into totals and rates within one tool call as they apply;
 * approvals of the step itself carry over only to a built-in's own call (the same action), never
 * to the calls a user tool makes; the gate holds no credential and only the public rules.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from '../custody/canonical-json';
import { wellFormed } from '../custody/span-record';
import { cutText } from '../cut-text';
import { CapabilityError, type ErrorCode } from '../errors';
import { policyRequestOf } from '../policies/build-policy-request';
import { createPolicyEngine, type PolicyEngine } from '../policies/engine/policy-engine';
import type { PolicyRequest, ToolEffect } from '../policies/engine/policy-request';
import { recordExecution, type PolicyState } from '../policies/engine/policy-state';
import { argumentLeaves, buildProvenanceIndex, type ProvenanceIndex } from '../policies/engine/provenance';
import { getBuiltinTool } from '../tools/builtin-tools';
import { EGRESS_HOLD_RULE, egressHoldReason } from '../monitoring/egress-watch';
import type { CapabilityName } from '../tools/tool-descriptor';
import type { CapabilityGrant, GateReport, PolicyGateSpec } from './sandbox-messages';
import { capabilityCallRefusal, GRANT_RULE, grantRuleMatch } from './capabilities/grant-refusal';

/**
 * The rule id a call is refused under when the gate itself failed while deciding or recording it:
 * a sticky deny, as for any denied call (the class: a decision path that throws is never weaker
 * than a refusal).
 */
export const GATE_FAILED_RULE = 'warden:policy-gate-failed';

/** Most capability calls one tool call may make under a gate (each is reported and counted). */
export const MAX_GATED_CALLS = 500;
/** How long counters remember calls in the gate's local state (as the workflow keeps them). */
const RETAIN_MS = 24 * 3_600_000;

const engines = new Map<string, PolicyEngine>();

function engineOf(spec: PolicyGateSpec): PolicyEngine {
  let engine = engines.get(spec.rulesKey);
  if (engine === undefined) {
    // A spec without rules was filled from this cache (`withHeldRules`); never an empty rule set.
    if (spec.rules === undefined) throw new TypeError(`the policy gate holds no rules for key ${spec.rulesKey}`);
    engine = createPolicyEngine(spec.rules);
    if (engines.size > 64) engines.clear();
    engines.set(spec.rulesKey, engine);
  }
  return engine;
}

/**
 * The host's side of sending rules once: a spec with rules has its engine built and kept now (so a
 * later call may leave them out, even when this one runs no capability call); a spec without them
 * gets the rules of the engine held for its `rulesKey`, or `undefined` when none is held (the host
 * answers SANDBOX_RULES_UNKNOWN). Filling the spec here means an engine dropped from the cache
 * before the call runs is rebuilt from the same rules.
 */
export function withHeldRules(spec: PolicyGateSpec): PolicyGateSpec | undefined {
  if (spec.rules !== undefined) {
    engineOf(spec);
    return spec;
  }
  const held = engines.get(spec.rulesKey);
  return held === undefined ? undefined : { ...spec, rules: held.rules as PolicyGateSpec['rules'] };
}

export interface PolicyGate {
  /**
   * Decides one capability call; returns when it may apply. Throws CapabilityError
   * ERR_POLICY_DENIED or ERR_APPROVAL_REQUIRED (and refuses every later call) otherwise; any other
   * error while deciding or recording becomes such a deny ({@link GATE_FAILED_RULE}), never a
   * thrown error of its own.
   */
  check(capability: CapabilityName, args: Record<string, unknown>, measured?: ToolEffect): void;
  /** What was applied and what stopped the call. */
  report(): GateReport;
}

/** Hex SHA-256 of what a human approves: the capability, its arguments and the measured effect. */
export function effectDigest(capability: string, args: Record<string, unknown>, measured: ToolEffect | undefined): string {
  const core = {
    capability,
    args: digestArgs(capability, args),
    effect: measured === undefined ? null : { rowsByOperation: measured.rowsByOperation ?? null, tables: measured.tables ?? null },
  };
  return createHash('sha256').update(canonicalize(core)).digest('hex');
}

/** The arguments that make a capability call what it is; bodies and contents by hash. */
function digestArgs(capability: string, args: Record<string, unknown>): unknown {
  const hash = (value: unknown) => (typeof value === 'string' ? createHash('sha256').update(value).digest('hex') : null);
  switch (capability) {
    case 'http.fetch':
      return { url: args.url ?? null, method: typeof args.method === 'string' ? args.method.toUpperCase() : 'GET', body: hash(args.body) };
    case 'fs.write':
      return { path: args.path ?? null, content: hash(args.content) };
    default:
      return JSON.parse(JSON.stringify(args)) as unknown;
  }
}

/** The request as reported back: no bodies, contents or headers (they may be large or secret). */
function compact(request: PolicyRequest): PolicyRequest {
  const { body: _body, content: _content, headers: _headers, ...args } = request.args;
  return { ...request, args };
}

/**
 * A gate for one tool call. `callerSource` is the tool's own code (user-written, from the task
 * file): values it spells out count as the user's. `grant` is what the call was handed: a
 * capability call the rules would hold and it refuses is denied under the rule `grants`
 * (capabilities/grant-refusal.ts), so it is never held for a human nor counted as approved.
 */
export function createPolicyGate(spec: PolicyGateSpec, callerSource: string, grant?: CapabilityGrant): PolicyGate {
  const engine = engineOf(spec);
  const callerArgs = spec.caller.args;
  // Built at the first capability call, once, from the spec (which nothing changes meanwhile): a
  // tool that makes no capability call (pure computation) needs none, and indexing the user's
  // words and the tool's source was most of a gated call's host time. A failure to build it is a
  // failure to decide that call: fail closed, as any other (`check`).
  let index: ProvenanceIndex | undefined;
  let state: PolicyState = spec.state as PolicyState;
  const applied: GateReport['applied'] = [];
  let stopped: GateReport['stopped'];
  let stopCode: ErrorCode | undefined;

  // The last refusal thrown: told apart from any other error the deciding throws.
  let lastRefusal: CapabilityError | undefined;

  const refuse = (code: ErrorCode, message: string): never => {
    stopCode ??= code;
    lastRefusal = new CapabilityError(code, message);
    throw lastRefusal;
  };

  return {
    check(capability, args, measured) {
      if (stopCode !== undefined) refuse(stopCode, 'an earlier capability call of this tool call was stopped by policy');
      if (applied.length >= MAX_GATED_CALLS) refuse('ERR_POLICY_DENIED', `more than ${MAX_GATED_CALLS} capability calls in one tool call`);
      try {
        decideCall(capability, args, measured);
      } catch (error) {
        // A refusal is passed on as it is; anything else the deciding or recording threw (a value
        // canonical JSON refuses, a BigInt, a bug) must never be weaker than a refusal: tool code
        // could catch a plain error and have its next call decided afresh.
        if (error === lastRefusal && stopped !== undefined) throw error;
        failClosed(capability, args, error);
      }
    },
    report() {
      return { applied, ...(stopped === undefined ? {} : { stopped }) };
    },
  };

  function failClosed(capability: CapabilityName, args: Record<string, unknown>, error: unknown): never {
    const why = `the policy gate could not decide ${capability}: ${cutText(wellFormed(error instanceof Error ? `${error.name}: ${error.message}` : String(error)), 300)}`;
    stopped = {
      decision: 'deny',
      request: reportableRequest(capability, args),
      matched: [{ id: GATE_FAILED_RULE, sentence: 'refuse a capability call the policy gate cannot decide', effect: 'deny', reason: why, kind: 'stateful' }],
      digest: createHash('sha256').update(`${GATE_FAILED_RULE}\u0000${capability}`).digest('hex'),
    };
    return refuse('ERR_POLICY_DENIED', `${capability} denied by policy ${GATE_FAILED_RULE}: ${why}`);
  }

  /** The call as reported when deciding it failed: its compact request when that is plain JSON, else its name alone. */
  function reportableRequest(capability: CapabilityName, args: Record<string, unknown>): PolicyRequest {
    const bare: PolicyRequest = {
      tool: capability,
      ...(spec.caller.builtin ? {} : { via: spec.caller.tool }),
      destinations: [],
      args: {},
      resources: { paths: [], hosts: [], databases: [] },
      agent: spec.agent as PolicyRequest['agent'],
      provenance: {},
      now: spec.now,
    };
    try {
      const { body: _body, content: _content, headers: _headers, ...rest } = args;
      canonicalize(rest);
      return { ...bare, args: rest };
    } catch {
      return bare;
    }
  }

  function decideCall(capability: CapabilityName, args: Record<string, unknown>, measured: ToolEffect | undefined): void {
      const descriptor = getBuiltinTool(capability);
      const own = spec.caller.builtin;
      const request = policyRequestOf({
        tool: capability,
        args,
        ...(descriptor === undefined ? {} : { descriptor }),
        agent: spec.agent,
        now: spec.now,
        index: (index ??= callerIndex(spec, callerSource)),
        ...(own ? { argSources: spec.caller.argSources } : {}),
        ...(measured === undefined ? {} : { measured }),
        ...(own ? {} : { via: spec.caller.tool }),
      });
      const decision = engine.decide(request, state);
      const matchedIds = decision.matched.filter((m) => m.effect !== 'allow').map((m) => m.id);
      if (decision.decision === 'deny') {
        const rule = decision.matched.find((m) => m.effect === 'deny');
        stopped = { decision: 'deny', request: compact(request), matched: decision.matched, digest: effectDigest(capability, args, measured) };
        refuse('ERR_POLICY_DENIED', `${capability} denied by policy ${rule?.id ?? ''}: ${rule?.reason ?? decision.reasons.join('; ')}`);
      }
      // A user tool's request reaches hosts its arguments may never name: the monitor's watch is
      // asked before it connects, as the egress proxy asks it for programs.
      const held = own || capability !== 'http.fetch' ? undefined : heldByMonitor(args);
      if (held !== undefined) {
        stopped = { decision: 'deny', request: compact(request), matched: [{ id: EGRESS_HOLD_RULE, sentence: 'hold a new host the response rules answer', effect: 'deny', reason: held, kind: 'stateful' }], digest: effectDigest(capability, args, measured) };
        refuse('ERR_POLICY_DENIED', `${capability} denied by policy ${EGRESS_HOLD_RULE}: ${held}`);
      }
      if (decision.decision === 'approval') {
        // What the call's grant refuses is never held, nor let through by an approval: denied now,
        // with the grant's reason (a human could only approve what the capability then refuses).
        const refused = grant === undefined ? undefined : capabilityCallRefusal(grant, capability, args);
        if (refused !== undefined) {
          stopped = { decision: 'deny', request: compact(request), matched: [grantRuleMatch(refused)], digest: effectDigest(capability, args, measured) };
          refuse('ERR_POLICY_DENIED', `${capability} denied by policy ${GRANT_RULE}: ${refused.reason}`);
        }
        const digest = effectDigest(capability, args, measured);
        const rules = decision.matched.filter((m) => m.effect === 'approval').map((m) => m.id);
        const approved = spec.approvedEffects.includes(digest) || (own && rules.every((id) => spec.approvedRules.includes(id)));
        if (!approved) {
          stopped = { decision: 'approval', request: compact(request), matched: decision.matched, digest };
          refuse('ERR_APPROVAL_REQUIRED', `${capability} needs approval: ${decision.reasons.join('; ')}`);
        }
      }
      // The state is computed before anything is reported applied: a throw here refuses the call whole.
      const next = recordExecution(state, request, { status: 'ok' }, { retainMs: RETAIN_MS });
      applied.push({
        request: compact(request),
        decision: decision.decision,
        rules: matchedIds,
        ...(decision.shadow === undefined ? {} : { shadow: decision.shadow.matched.map((m) => m.id) }),
      });
      state = next;
  }

  function heldByMonitor(args: Record<string, unknown>): string | undefined {
    if (spec.egressWatch === undefined || typeof args.url !== 'string') return undefined;
    let url: URL;
    try {
      url = new URL(args.url);
    } catch {
      return undefined;
    }
    const body = args.body;
    const sendsBody = body !== undefined && body !== null && body !== '' && !(body instanceof Uint8Array && body.length === 0);
    return egressHoldReason(spec.egressWatch, url.host, typeof args.method === 'string' ? args.method : 'GET', sendsBody);
  }

  /**
   * Where a capability call's values came from. A built-in's own call has its tool's arguments and
   * their recorded sources; a user tool's calls are classified against the user's values, the
   * tool's own source, and its arguments by the source each had (a value built from untrusted
   * arguments stays untrusted; one found nowhere came from what the tool itself read).
   */
  function callerIndex(gateSpec: PolicyGateSpec, source: string): ProvenanceIndex {
    const trusted: unknown[] = [];
    const untrusted: unknown[] = [];
    const userArgs: unknown[] = [];
    for (const leaf of argumentLeaves(callerArgs)) {
      const from = gateSpec.caller.argSources[leaf.pointer];
      if (from === 'user') userArgs.push(leaf.value);
      else if (from === 'trusted') trusted.push(leaf.value);
      else untrusted.push(leaf.value);
    }
    return buildProvenanceIndex({
      intent: gateSpec.seed.userTexts[0] ?? '',
      taskValues: [...gateSpec.seed.userTexts.slice(1), ...(gateSpec.caller.builtin ? [] : [source]), ...userArgs],
      trusted,
      trustedAtoms: gateSpec.seed.trustedAtoms,
      toolOutputs: untrusted,
    });
  }
}
