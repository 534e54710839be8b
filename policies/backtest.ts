/**
 * Policy backtesting: replays the actions of recorded runs (steps of their results, task from the
 * workflow input) through another pack, with running totals rebuilt in the recorded order, and
 * reports what it would have allowed, denied or held for approval.
 */
import type { StepRecord, TaskResult } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { deriveSubagentTask } from '../permissions/derive-subagent-task';
import { buildPolicyRequest } from './build-policy-request';
import type { PolicyEngine } from './engine/policy-engine';
import type { ToolEffect } from './engine/policy-request';
import { emptyPolicyState, recordExecution, type PolicyState } from './engine/policy-state';

export interface BacktestStep {
  workflowId: string;
  agent: string;
  index: number;
  tool: string;
  args: Record<string, unknown>;
  /** What happened in the recorded run. */
  recorded: { decision: string; policy?: string; executed: boolean };
  /** What the new pack decides. */
  decision: 'allow' | 'deny' | 'approval';
  rules: string[];
}

/** The effect a recorded step had: what Warden measured where it was applied, else (older runs) rows read off its output. */
function recordedEffect(step: StepRecord): ToolEffect | undefined {
  if (step.effect !== undefined) return step.effect as ToolEffect;
  if (step.tool === 'sql.exec' && typeof step.output === 'object' && step.output !== null) {
    const changes = (step.output as { changes?: unknown; rowsChanged?: unknown }).rowsChanged ?? (step.output as { changes?: unknown }).changes;
    if (typeof changes === 'number') return { rowsChanged: changes };
  }
  return undefined;
}

export function backtestRun(engine: PolicyEngine, task: Task, result: TaskResult, chain: string[] = [], state: PolicyState = emptyPolicyState()): { steps: BacktestStep[]; state: PolicyState } {
  const steps: BacktestStep[] = [];
  const outputs: unknown[] = [];
  let current = state;
  for (const step of result.steps) {
    const request = buildPolicyRequest({
      task,
      workflowId: result.workflowId,
      depth: result.depth,
      chain,
      tool: step.tool,
      args: step.kind === 'spawn' ? { intent: String(step.args.intent ?? '') } : step.args,
      priorOutputs: [...outputs],
      effect: step.kind === 'tool' ? recordedEffect(step) : undefined,
      now: step.startedAt,
    });
    const decision = engine.decide(request, current);
    steps.push({
      workflowId: result.workflowId,
      agent: result.agent,
      index: step.index,
      tool: step.tool,
      args: step.args,
      recorded: { decision: step.decision, ...(step.policy === undefined ? {} : { policy: step.policy.decision }), executed: step.executed },
      decision: decision.decision,
      rules: decision.matched.filter((m) => m.effect === decision.decision).map((m) => `${m.id}: ${m.sentence}`),
    });
    if (step.executed && step.kind === 'tool') current = recordExecution(current, request, { status: step.error ? 'error' : 'ok' }, { retainMs: 24 * 3_600_000 });
    if (step.executed && step.output !== undefined) outputs.push(step.output);
    if (step.kind === 'spawn') {
      const name = String(step.args.subagent);
      const child = result.children.find((c) => c.workflowId.endsWith(`/${name}-${step.index}`));
      if (child !== undefined && task.subagents[name] !== undefined) {
        const childTask = deriveSubagentTask(task, name, typeof step.args.intent === 'string' ? step.args.intent : undefined);
        const sub = backtestRun(engine, childTask, child, [...chain, task.agent.name], current);
        steps.push(...sub.steps);
        current = sub.state;
      }
    }
  }
  return { steps, state: current };
}

/** Counts of a backtest by decision. */
export function summarizeBacktest(steps: readonly BacktestStep[]): Record<'allow' | 'deny' | 'approval', number> {
  const counts = { allow: 0, deny: 0, approval: 0 };
  for (const s of steps) counts[s.decision] += 1;
  return counts;
}
