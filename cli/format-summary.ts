/** Human-readable rendering of a task's steps and result, for `warden run` without `--json`. */
import { formatAlert } from '../monitoring/alert';
import type { StepRecord, TaskResult } from '../task/task-run';

const MAX_VALUE_CHARS = 160;

function compact(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

/** One line for one step: index, tool, arguments, decision, outcome. */
export function formatStep(step: StepRecord, path: readonly string[] = []): string {
  const who = path.length > 0 ? `[${path.join(' > ')}] ` : '';
  const decision = step.decision === 'allow' ? 'allowed' : 'DENIED';
  const outcome = step.error
    ? `${step.executed ? 'failed' : 'not run'}: ${step.error.code} ${step.error.message}`
    : step.executed
      ? `ok ${compact(step.output)}`
      : 'not run';
  const score = step.monitor !== undefined && step.monitor.score > 0 ? ` [anomaly score ${step.monitor.score}${step.monitor.response === undefined ? '' : `: ${step.monitor.response}`}]` : '';
  return `  ${who}#${step.index} ${step.tool} ${compact(step.args)} -> ${decision}${step.decision === 'deny' ? ` (${step.reason})` : ''}; ${outcome}${score}`;
}

function formatTask(result: TaskResult, path: string[], lines: string[]): void {
  const indent = '  '.repeat(path.length);
  lines.push(`${indent}${path.length === 0 ? 'task' : 'sub-agent'} ${result.agent} (${result.workflowId}): ${result.status.toUpperCase()}${result.reason ? ` - ${result.reason}` : ''}`);
  lines.push(`${indent}  model ${result.model.id}@${result.model.version}, ${result.steps.length} step(s)`);
  for (const step of result.steps) lines.push(indent + formatStep(step));
  for (const alert of result.alerts ?? []) lines.push(`${indent}  alert ${alert.id}: ${formatAlert(alert)}`);
  for (const child of result.children) formatTask(child, [...path, child.agent], lines);
  if (result.final) {
    lines.push(`${indent}  final: ${result.final.answer}`);
    for (const claim of result.final.claims) lines.push(`${indent}    claim: ${claim}`);
  }
}

export function formatSummary(result: TaskResult): string {
  const lines: string[] = [];
  formatTask(result, [], lines);
  return lines.join('\n');
}
