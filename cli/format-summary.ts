/** Human-readable rendering of a task's steps and result, for `warden run` without `--json`. */
import type { StepRecord, TaskResult } from '../task/task-run';
import { tallyClaims } from '../attestation/claim-outcome';
import { ClaimSchema, describeClaim } from '../attestation/claim-schema';

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
  return `  ${who}#${step.index} ${step.tool} ${compact(step.args)} -> ${decision}${step.decision === 'deny' ? ` (${step.reason})` : ''}; ${outcome}`;
}

function formatTask(result: TaskResult, path: string[], lines: string[]): void {
  const indent = '  '.repeat(path.length);
  lines.push(`${indent}${path.length === 0 ? 'task' : 'sub-agent'} ${result.agent} (${result.workflowId}): ${result.status.toUpperCase()}${result.reason ? ` - ${result.reason}` : ''}`);
  lines.push(`${indent}  model ${result.model.id}@${result.model.version}, ${result.steps.length} step(s)`);
  for (const step of result.steps) lines.push(indent + formatStep(step));
  for (const child of result.children) formatTask(child, [...path, child.agent], lines);
  if (result.final) {
    lines.push(`${indent}  final: ${result.final.answer}`);
    for (const claim of result.final.claims) lines.push(`${indent}    claim: ${claimText(claim)}`);
  }
}

/** A claim as stated, in words (a malformed structured claim as its JSON). */
function claimText(claim: unknown): string {
  const parsed = ClaimSchema.safeParse(claim);
  return parsed.success ? describeClaim(parsed.data) : compact(claim);
}

const VERDICT_LABEL = { verified: 'VERIFIED  ', refuted: 'REFUTED   ', unverified: 'unverified' } as const;

/** Warden's verdicts on the task tree's claims: one line each, with why and, when signed, by which key. */
function formatClaims(result: TaskResult, lines: string[]): void {
  const claims = result.claims ?? [];
  if (claims.length === 0) return;
  const tally = tallyClaims(claims);
  lines.push(`claims checked by Warden: ${tally.verified} verified, ${tally.refuted} refuted, ${tally.unverified} unverified`);
  for (const c of claims) {
    const signed = c.envelope === undefined ? '' : ` [signed ${c.envelope.signatures[0]?.keyid.slice(0, 12)}…${c.custody === undefined ? '' : `, custody #${c.custody.seq}`}]`;
    lines.push(`  ${VERDICT_LABEL[c.verdict]} ${c.agent}: ${c.text.slice(0, MAX_VALUE_CHARS)} -- ${c.reason.slice(0, MAX_VALUE_CHARS)}${signed}`);
  }
}

export function formatSummary(result: TaskResult): string {
  const lines: string[] = [];
  formatTask(result, [], lines);
  formatClaims(result, lines);
  return lines.join('\n');
}
