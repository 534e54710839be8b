/**
 * Human-readable rendering of a task's steps and result, for `warden run` without `--json`.
 * Every line holds text others wrote (a tool's error, a model's answer and claims, a tool name
 * the model asked for): each is made safe for a terminal line (../terminal-text.ts), so none
 * starts a line of its own or reaches the terminal as a control.
 */
import { formatAlert } from '../monitoring/alert';
import type { PendingApproval, StepRecord, TaskResult } from '../task/task-run';
import { tallyClaims } from '../attestation/claim-outcome';
import { ClaimSchema, describeClaim } from '../attestation/claim-schema';
import { cutText, ellipsize } from '../cut-text';
import { isRefusalCode } from '../refusal-codes';
import { terminalLine } from '../terminal-text';

const MAX_VALUE_CHARS = 160;

function compact(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return ellipsize(text, MAX_VALUE_CHARS);
}

/**
 * One line for one step: index, tool, arguments, decision, outcome. A step the policy allowed but
 * a guard of the tool call refused (a path outside the workspace, a denied host, ...: a code of
 * refusal-codes.ts) says both, the policy's decision as recorded and who refused it and why: read
 * as "allowed; failed", it looked as if Warden had let the action through.
 */
export function formatStep(step: StepRecord, path: readonly string[] = []): string {
  const who = path.length > 0 ? `[${path.join(' > ')}] ` : '';
  // Held for approval and never decided (the task was cancelled or reached its deadline first).
  const withdrawn = step.policy?.decision === 'approval' && step.approval === undefined && !step.executed && step.error === undefined;
  const refusedByTool = step.decision === 'allow' && step.error !== undefined && isRefusalCode(step.error.code);
  const decision = withdrawn ? 'held for approval, withdrawn undecided' : refusedByTool ? 'allowed by policy, but' : step.decision === 'allow' ? 'allowed' : 'DENIED';
  const outcome = step.error
    ? `${refusedByTool ? 'REFUSED by the tool' : step.executed ? 'failed' : 'not run'}: ${step.error.code} ${step.error.message}`
    : step.executed
      ? `ok ${compact(step.output)}`
      : 'not run';
  const undone = step.undone !== undefined && step.undone.length > 0 ? `; its writes undone: ${step.undone.join(', ')}` : '';
  const score = step.monitor !== undefined && step.monitor.score > 0 ? ` [anomaly score ${step.monitor.score}${step.monitor.response === undefined ? '' : `: ${step.monitor.response}`}]` : '';
  return terminalLine(`  ${who}#${step.index} ${step.tool} ${compact(step.args)} -> ${decision}${step.decision === 'deny' ? ` (${step.reason})` : ''}${refusedByTool ? ' ' : '; '}${outcome}${undone}${score}`);
}

/** How `warden run` names a step it printed as it ran (its task's workflow id and the step's index). */
export function shownStepKey(workflowId: string, index: number): string {
  return `${workflowId}#${index}`;
}

function formatTask(result: TaskResult, path: string[], lines: string[], shown: ReadonlyMap<string, string>): void {
  const indent = '  '.repeat(path.length);
  lines.push(`${indent}${path.length === 0 ? 'task' : 'sub-agent'} ${result.agent} (${result.workflowId}): ${result.status.toUpperCase()}${result.reason ? ` - ${result.reason}` : ''}`);
  // A step shown before its record was final (a score added after it ran) is listed as it ended.
  const unseen = result.steps.filter((step) => shown.get(shownStepKey(result.workflowId, step.index)) !== formatStep(step));
  const seen = result.steps.length - unseen.length;
  const above = seen === 0 ? '' : unseen.length === 0 ? ', shown on stderr as they ran' : `, ${seen} shown on stderr as they ran`;
  lines.push(`${indent}  model ${result.model.id}@${result.model.version}, ${result.steps.length} step(s)${above}`);
  for (const step of unseen) lines.push(indent + formatStep(step));
  for (const alert of result.alerts ?? []) lines.push(`${indent}  alert ${alert.id}: ${formatAlert(alert)}`);
  for (const child of result.children) formatTask(child, [...path, child.agent], lines, shown);
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

/** Warden's verdicts on the task tree's claims: one line each, with why and, when signed, by which key (its key id, cut: never read as the signature). */
function formatClaims(result: TaskResult, lines: string[]): void {
  const claims = result.claims ?? [];
  if (claims.length === 0) return;
  const tally = tallyClaims(claims);
  lines.push(`claims checked by Warden: ${tally.verified} verified, ${tally.refuted} refuted, ${tally.unverified} unverified`);
  for (const c of claims) {
    const signed = c.envelope === undefined ? '' : ` [signed by key ${c.envelope.signatures[0]?.keyid.slice(0, 12)}…${c.custody === undefined ? '' : `, custody #${c.custody.seq}`}]`;
    lines.push(`  ${VERDICT_LABEL[c.verdict]} ${c.agent}: ${cutText(c.text, MAX_VALUE_CHARS)} -- ${cutText(c.reason, MAX_VALUE_CHARS)}${signed}`);
  }
}

/**
 * The summary `warden run` prints at the end. `shown` holds the steps printed as they ran (key
 * from {@link shownStepKey} → the `formatStep` line printed): those are counted, not repeated, so
 * each step is printed once; one whose record changed after it was shown is listed as it ended.
 */
export function formatSummary(result: TaskResult, shown: ReadonlyMap<string, string> = new Map()): string {
  const lines: string[] = [];
  formatTask(result, [], lines, shown);
  formatClaims(result, lines);
  return lines.map(terminalLine).join('\n');
}

/**
 * One line saying what recovery did when a task did not complete: what was undone, what failed
 * to undo, what nobody can undo (an HTTP request already sent).
 */
export function formatRecovery(result: TaskResult): string {
  const recovery = result.recovery;
  if (recovery === undefined) return 'nothing to undo was recorded';
  if (recovery.committed !== undefined) {
    const left = recovery.notCommitted ?? [];
    return terminalLine(`committed ${recovery.committed.length} file(s)${left.length === 0 ? '' : `; not committed: ${left.join('; ')}`}`);
  }
  const undone = recovery.rolledBack.filter((r) => r.status !== 'failed');
  const failed = recovery.rolledBack.filter((r) => r.status === 'failed');
  const parts: string[] = [];
  parts.push(undone.length === 0 ? 'nothing needed undoing' : `undid ${undone.length} effect(s): ${undone.map((r) => `${r.kind}${r.forTool ? ` of ${r.forTool}` : ''} (${r.detail})`).join('; ')}`);
  if (failed.length > 0) parts.push(`could not undo ${failed.length}: ${failed.map((r) => `${r.kind}${r.forTool ? ` of ${r.forTool}` : ''} (${r.detail})`).join('; ')}`);
  if (recovery.notUndoable.length > 0) parts.push(`cannot be undone: ${recovery.notUndoable.join('; ')}`);
  if (recovery.restoredSnapshot === true) parts.push('the pre-task snapshot was restored');
  return terminalLine(parts.join('; '));
}

/** A held action as people should see it: what, its measured effect, why, until when, and how to decide. */
export function formatPendingApproval(workflowId: string, pending: PendingApproval): string {
  const lines = [`waiting for approval: warden approve ${workflowId} ${pending.requestId}   (or: warden deny ${workflowId} ${pending.requestId})`];
  lines.push(`  action:   ${pending.tool} ${compact(pending.args)}`);
  if (pending.effect !== undefined && Object.keys(pending.effect).length > 0) lines.push(`  effect:   ${describeEffect(pending.effect)}`);
  if (pending.rules.length > 0) lines.push(`  rules:    ${pending.rules.join('; ')}`);
  // The wait ends at the approval timeout or the task's own deadline, whichever comes first
  // (approval-gate.ts): the first denies the action, the second ends the task timed out.
  lines.push(`  deadline: ${pending.expiresAt} (undecided then: denied, or, if the task's own deadline comes first, the task ends timed out)`);
  return lines.map(terminalLine).join('\n');
}

/** The measured effect of an action in words: "would change 12 row(s) (delete)". */
export function describeEffect(effect: Record<string, unknown>): string {
  const parts: string[] = [];
  const rows = effect['rowsChanged'];
  if (typeof rows === 'number') parts.push(`would change ${rows} row(s)${typeof effect['operation'] === 'string' ? ` (${effect['operation']})` : ''}`);
  for (const [key, value] of Object.entries(effect)) {
    if (key === 'rowsChanged' || key === 'operation') continue;
    parts.push(`${key} ${compact(value)}`);
  }
  return parts.join(', ');
}
