/**
 * The controls layer at the moment of action: measures what a proposed call would do (rows a
 * statement would change, bytes a write would put), classifies where each argument value came
 * from (the user's intent or a tool's output), and asks the policy engine for a decision.
 *
 * Invariant: rules about effects are decided on the effect Warden measured, never on what the
 * agent says it will do; a measurement that fails leaves the effect unknown, and rules fail closed.
 */
import { randomUUID } from 'node:crypto';
import { loadPolicyEngine, type PolicyEngine } from '../policies/engine/policy-engine';
import type { PolicyRequest, ToolEffect } from '../policies/engine/policy-request';
import { buildPolicyRequest, effectFromArgs, type PolicyRequestContext } from '../policies/build-policy-request';
import type { PolicyState } from '../policies/engine/policy-state';
import type { PolicyDecision } from '../policies/engine/policy-request';
import { createSqlCapability } from '../sandbox/capabilities/sql-capability';
import { protectedSetForCall } from './run-tool';
import { realRootOf, resolveInsideWorkspace } from '../sandbox/capabilities/fs-capability';
import { DEFAULT_POLICY_PACKS, type Task } from '../task/task-schema';
import type { ActivityDeps } from './index';
import { WARDEN_ATTR } from '../custody/attributes';
import { annotateActiveSpan } from '../telemetry/warden-span-attributes';
import { atActivityBoundary } from './to-application-failure';
import { resolveClaimChecks } from '../dataplane/claim-check';
import { containsClaimCheck } from '../task/data-refs';
import type { StepRecord } from '../task/task-run';

/** The action to decide on (the effect is measured here, not given) and the task's counters so far. */
export interface CheckPolicyInput extends Omit<PolicyRequestContext, 'effect'> {
  state: PolicyState;
  /**
   * The data flow's transcript head (blob-chain digest): the outputs of the steps in it are prior
   * outputs too. The workflow then sends in `priorOutputs` only the steps not in it yet (a long
   * task's earlier runs are there and nowhere else in the workflow).
   */
  priorOutputsRef?: string;
}

export interface PolicyCheck {
  decision: PolicyDecision;
  /** The request as evaluated (what `recordExecution` needs after the call ran). */
  request: PolicyRequest;
  /** When the decision is `approval`: the held request's id, random so nobody can name it before it exists. */
  approvalRequestId?: string;
  /**
   * For a built-in fs tool: its arguments with `path` resolved inside the workspace, the path the
   * rules judged. The call then runs on exactly that path, following no link (the decision and the
   * file opened cannot drift apart, also when a link changes while an approval waits).
   */
  resolvedArgs?: Record<string, unknown>;
}

/** Packs every task gets unless it names its own. */
export { DEFAULT_POLICY_PACKS };

const engines = new Map<string, PolicyEngine>();

/** The engine of a task's packs and sentences, compiled once per worker. */
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

/** What the call would do, measured without doing it; undefined where Warden cannot tell. */
function measureEffect(task: Task, tool: string, args: Record<string, unknown>, guarded?: { folders: string[]; files: string[]; readOnly: string[] }): ToolEffect | undefined {
  if (tool === 'sql.exec' && typeof args.database === 'string' && typeof args.sql === 'string') {
    const path = task.grants.databases.includes(args.database) ? task.resources.databases[args.database] : undefined;
    if (path === undefined) return undefined;
    try {
      // The broker runs the statement in a transaction and rolls it back: rows counted, nothing changed.
      // Checked on the file opened, like the call itself: a dry run never runs on Warden's own state.
      const sql = createSqlCapability({
        databases: { [args.database]: path },
        query: false,
        exec: true,
        dryRun: true,
        ...(guarded === undefined ? {} : { protectedPaths: guarded.folders, protectedFiles: guarded.files, readOnlyPaths: guarded.readOnly }),
      });
      const measured = sql.exec(args.database, args.sql, Array.isArray(args.params) ? args.params : []) as { changes: number };
      const operation = /^\s*(\w+)/.exec(args.sql)?.[1]?.toLowerCase();
      return { rowsChanged: measured.changes, ...(operation === undefined ? {} : { operation }) };
    } catch {
      // The statement would fail or is refused by the broker: the call itself will say so.
      return undefined;
    }
  }
  const effect = effectFromArgs(tool, args);
  const resolved = resolvedWorkspacePath(task, tool, args);
  return resolved === undefined ? effect : { ...effect, path: resolved };
}

/** A built-in fs tool the task declares (a user tool named like one is refused when the task loads). */
function isBuiltinFsTool(task: Task, tool: string): boolean {
  return (tool === 'fs.read' || tool === 'fs.write' || tool === 'fs.list') && (task.tools.builtin as readonly string[]).includes(tool);
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

/**
 * Whether a task's decisions can depend on its counters (totals or rates): then only the workflow,
 * which holds the counters, can ask. Without such rules a decision depends on the action, the
 * measured effect, provenance and the clock only, and may be made ahead (precheck-policy.ts).
 */
export function policyNeedsState(task: Task): boolean {
  return policyEngineFor(task).rules.some((rule) => rule.kind === 'stateful' && (rule.spec.type === 'total' || rule.spec.type === 'rate'));
}

/**
 * The decision on one action: its effect measured here, then the engine; sets the policy
 * attributes on the active span. `recorded` are the arguments as history holds them (long values
 * as claim checks, see the data flow): what the request and resolved arguments keep.
 */
export function decidePolicy(input: CheckPolicyInput, recorded: Record<string, unknown> = input.args, guarded?: ProtectedSet): PolicyCheck {
  const engine = policyEngineFor(input.task);
  const request = buildPolicyRequest({ ...input, effect: measureEffect(input.task, input.tool, input.args, guarded) });
  const decision = engine.decide(request, input.state);
  // The `check_policy <tool>` span already names the task, agent and call; the verdict goes on it.
  annotateActiveSpan({
    [WARDEN_ATTR.policyDecision]: decision.decision,
    [WARDEN_ATTR.policyRules]: decision.matched.map((m) => `${m.id} ${m.effect}: ${m.sentence}`),
  });
  const resolved = isBuiltinFsTool(input.task, input.tool) ? resolvedWorkspacePath(input.task, input.tool, input.args) : undefined;
  return {
    decision,
    request: recorded === input.args ? request : { ...request, args: recorded },
    ...(decision.decision === 'approval' ? { approvalRequestId: randomUUID() } : {}),
    ...(resolved === undefined ? {} : { resolvedArgs: { ...recorded, path: resolved } }),
  };
}

type ProtectedSet = { folders: string[]; files: string[]; readOnly: string[] };

/** The protected set a `sql.exec` effect is measured against (undefined for other tools or without a state folder). */
export async function guardedFor(deps: ActivityDeps, task: Task, tool: string): Promise<ProtectedSet | undefined> {
  return tool === 'sql.exec' && deps.stateDir !== undefined ? protectedSetForCall(deps, task) : undefined;
}

export function createCheckPolicy(deps: ActivityDeps) {
  return async function checkPolicy(input: CheckPolicyInput): Promise<PolicyCheck> {
    return atActivityBoundary(async () => {
      const dataPlane = deps.dataPlane;
      const { priorOutputsRef, ...request } = input;
      // Warden's own files, judged on what `sql.exec` would open (protected-guard).
      const guarded = await guardedFor(deps, request.task, request.tool);
      if (dataPlane === undefined) return decidePolicy(request, request.args, guarded);
      // Decided on the real values: the arguments' and every earlier output's (a value copied out
      // of a claim-checked output, or out of an earlier run, still counts as a tool's). Recorded
      // with the claim checks (long values stay out of history).
      const earlier = priorOutputsRef === undefined ? [] : outputsOf(await dataPlane.chains.read<StepRecord>('transcript', priorOutputsRef));
      const priorOutputs = (await resolveClaimChecks(dataPlane.blobs, [...earlier, ...request.priorOutputs])) as unknown[];
      const args = containsClaimCheck(request.args) ? ((await resolveClaimChecks(dataPlane.blobs, request.args)) as Record<string, unknown>) : request.args;
      return decidePolicy({ ...request, args, priorOutputs }, request.args, guarded);
    });
  };
}

/** The outputs of the steps that ran (what provenance counts as tools' words). */
export function outputsOf(steps: readonly StepRecord[]): unknown[] {
  return steps.filter((s) => s.executed && s.output !== undefined).map((s) => s.output);
}
