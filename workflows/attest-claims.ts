/**
 * After the root task's saga settled: every claim of the task tree (the root agent's and each
 * sub-agent's final claims) is checked by Warden, one `attestClaim` activity per claim, against
 * what the commit made real. The verdicts go into the result (`claims`), and a tree in which any
 * claim was refuted ends `refuted` instead of `completed`.
 *
 * Only the root does this (its sub-agents' effects are committed with it). A claim whose activity
 * fails for good is reported `unverified` with the failure; attestation never fails the task.
 *
 * Deterministic code only.
 */
import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import type { AttestClaimInput } from '../attestation/claim-verification';
import { refutationReason, type ClaimOutcome, type StatedClaim } from '../attestation/claim-outcome';
import { ClaimSchema, describeClaim, normalizeClaim } from '../attestation/claim-schema';
import { DEFAULT_VERIFICATION_TIMEOUT } from '../attestation/attestation-config';
import { SANDBOX_ANSWER_BOUND_PAST_TIMEOUT_MS } from '../sandbox/liveness-bounds';
import { durationToMs } from '../task/duration';
import type { TaskResult } from '../task/task-run';
import type { AgentRun } from './agent-run';
import { stepErrorOf } from './task-ended';
import { callTarget, escapeMarkdown, oneLine } from './ui-summaries';

/**
 * Room past the verification's own time limit for the credential, the custody append and signing
 * (30 s), and for a user verifier the latest the sandbox answers its call past that limit
 * (sandbox/liveness-bounds.ts): the server must not time out and retry a check still running.
 */
const ATTEST_ACTIVITY_MARGIN_MS = 30_000 + SANDBOX_ANSWER_BOUND_PAST_TIMEOUT_MS;

interface TreeClaim {
  node: TaskResult;
  index: number;
  claim: StatedClaim;
}

/** Every final claim in the tree, the root's first, then each sub-agent's depth first. */
function claimsOfTree(node: TaskResult, out: TreeClaim[] = []): TreeClaim[] {
  (node.final?.claims ?? []).forEach((claim, index) => out.push({ node, index, claim }));
  for (const child of node.children) claimsOfTree(child, out);
  return out;
}

/** The claimant's part of the tree, keeping only the steps of `tool` (all a `tool.called` check reads). */
function recordedCallsOf(node: TaskResult, tool: string): Pick<TaskResult, 'workflowId' | 'steps' | 'children'> {
  return {
    workflowId: node.workflowId,
    steps: node.steps.filter((s) => s.tool === tool),
    children: node.children.map((child) => recordedCallsOf(child, tool) as TaskResult),
  };
}

function failedOutcome(item: TreeClaim, reason: string): ClaimOutcome {
  const parsed = ClaimSchema.safeParse(item.claim);
  const claim = parsed.success ? normalizeClaim(parsed.data) : { kind: 'text' as const, text: typeof item.claim === 'string' ? item.claim : JSON.stringify(item.claim) };
  return {
    id: `${item.node.workflowId}#claim-${item.index}`,
    workflowId: item.node.workflowId,
    agent: item.node.agent,
    index: item.index,
    claim,
    text: describeClaim(claim),
    verdict: 'unverified',
    reason,
    subjects: [],
    verifier: { id: `warden/verifier/${claim.kind}`, version: '1' },
    verifiedAt: new Date(Date.now()).toISOString(),
  };
}

/**
 * `claim of tidier: sql.count app.items`: the check as the Temporal UI shows it. What the history
 * already holds, cut to one line; a URL without credentials, query or fragment.
 */
export function claimCheckSummary(agent: string, raw: StatedClaim): string {
  const parsed = ClaimSchema.safeParse(raw);
  const claim = parsed.success ? normalizeClaim(parsed.data) : undefined;
  let target = '';
  switch (claim?.kind) {
    case 'file.sha256':
    case 'file.contains':
      target = claim.path;
      break;
    case 'sql.count':
      target = `${claim.database}.${claim.table}`;
      break;
    case 'http.status':
      target = callTarget('http.fetch', { url: claim.url, method: claim.method });
      break;
    case 'tests.pass':
      target = claim.command;
      break;
    case 'tool.called':
      target = claim.tool;
      break;
    case 'custom':
      target = claim.verifier;
      break;
  }
  return oneLine(escapeMarkdown(`claim of ${agent}: ${claim?.kind ?? 'malformed'}${target === '' ? '' : ` ${target}`}`));
}

/** Checks the tree's claims and records the verdicts in `result` (and its status). */
export async function attestClaims(run: AgentRun, result: TaskResult): Promise<void> {
  const claims = claimsOfTree(result);
  if (claims.length === 0) return;
  const timeoutMs = durationToMs(run.task.attestation?.timeout ?? DEFAULT_VERIFICATION_TIMEOUT);
  const options: ActivityOptions = {
    startToCloseTimeout: timeoutMs + ATTEST_ACTIVITY_MARGIN_MS,
    heartbeatTimeout: '20 seconds',
    // A check that failed for a transient reason is tried again; the verdict is recorded once.
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
  };
  const committed = result.status === 'completed';
  const outcomes: ClaimOutcome[] = [];
  // One at a time: a test re-run can take the machine's cores.
  for (const item of claims) {
    const parsed = ClaimSchema.safeParse(item.claim);
    const input: AttestClaimInput = {
      rootWorkflowId: run.rootWorkflowId,
      rootRunId: workflowInfo().runId,
      task: run.activityTask,
      committed,
      taskStatus: result.status,
      claimant: {
        workflowId: item.node.workflowId,
        runId: item.node.runId,
        agent: item.node.agent,
        model: item.node.model,
        ...(item.node.identity === undefined ? {} : { grantId: item.node.identity.grantId }),
      },
      index: item.index,
      claim: item.claim,
      ...(parsed.success && typeof parsed.data !== 'string' && parsed.data.kind === 'tool.called' ? { recorded: recordedCallsOf(item.node, parsed.data.tool) } : {}),
      ...(result.recovery?.committed === undefined ? {} : { committedFiles: result.recovery.committed }),
    };
    try {
      // The summary is user metadata for the UI: it does not change the command sequence.
      const { attestClaim } = proxyActivities<WardenActivities>({ ...options, summary: claimCheckSummary(item.node.agent, item.claim) });
      outcomes.push(await attestClaim(input));
    } catch (error) {
      const failure = stepErrorOf(error);
      outcomes.push(failedOutcome(item, `the check failed: ${failure.code}: ${failure.message}`));
    }
  }
  result.claims = outcomes;
  const refuted = committed ? refutationReason(outcomes) : undefined;
  if (refuted !== undefined) {
    result.status = 'refuted';
    result.reason = refuted;
    run.state.status = 'refuted';
  }
}
