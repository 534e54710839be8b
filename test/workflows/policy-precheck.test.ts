/**
 * The policy decision made ahead on the data flow (issue 17, "fewer round trips per step";
 * policies/policy-precheck.ts), on the real Temporal server:
 * - for a table of tasks (rules that read no state, totals, rates, time-of-day windows,
 *   approvals, provenance of untrusted outputs, denials with `onDeny` stop and continue) the
 *   decisions made ahead are exactly those of the workflow's `checkPolicy` local activity: each
 *   task runs both ways (the second with every decision made ahead taken out of the activities'
 *   results, so the workflow asks on its own) and the steps' decisions are compared;
 * - an action brought by a tool call or `placeTask` needs no policy local activity; one brought by
 *   a turn the workflow asked for on its own (after a refused step) still does;
 * - a decision made ahead that does not match is refused and the local activity decides instead:
 *   a different digest, a clock outside its interval, a different seed or policy state seen by
 *   the activity (what a signal or an approval changing them in between would look like), and
 *   one without a digest (the shape of histories recorded before);
 * - every history replays, and custody records each decision made ahead.
 * The probe (an activity interceptor) counts local activities and edits results: a recorded
 * result is what the workflow sees on replay too.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerReader } from '../../custody/ledger-reader';
import { parseTask } from '../../task/load-task-file';
import type { StepRecord, TaskResult } from '../../task/task-run';
import { workflowBundle } from '../../worker/workflow-bundle';
import { activityProbe } from '../support/activity-probe';
import { historiesOfRuns } from '../support/replay-runs';
import { makeNotesWorkspace } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** How the probe treats a workflow's activities. */
type Mode = 'as-is' | 'strip' | 'digest' | 'clock' | 'seed' | 'state' | 'no-digest';

const modes = new Map<string, Mode>();
/** `checkPolicy` local activities run, by workflow. */
const policyLocal = new Map<string, number>();
/** Decisions made ahead returned to the workflow, by workflow. */
const ahead = new Map<string, number>();

type Turned = { next?: { policy?: { precheck?: { digest: string; atMs: number; validFromMs: number; validUntilMs: number } } }; turn?: { policy?: { precheck?: unknown } } };

function editAhead(mode: Mode, policy: { precheck?: { digest: string; atMs: number; validFromMs: number; validUntilMs: number } } | undefined): void {
  if (policy?.precheck === undefined) return;
  if (mode === 'digest') policy.precheck.digest = `${policy.precheck.digest.slice(0, 63)}${policy.precheck.digest.endsWith('0') ? '1' : '0'}`;
  if (mode === 'clock') policy.precheck = { ...policy.precheck, validFromMs: policy.precheck.atMs - 2, validUntilMs: policy.precheck.atMs - 1 };
  if (mode === 'no-digest') delete policy.precheck;
}

const probe = activityProbe(modes, async ({ activityType, isLocal, workflowId, mode, args }, next) => {
  if (isLocal && activityType === 'checkPolicy') policyLocal.set(workflowId, (policyLocal.get(workflowId) ?? 0) + 1);
  const given = args[0] as { policy?: { state?: { agents: Record<string, unknown> } }; next?: { policy?: Record<string, unknown> } };
  // What the activity is told differs from what the workflow holds at its check.
  if (activityType === 'runTool' && given.next?.policy !== undefined) {
    if (mode === 'seed') given.next.policy.seed = { userTexts: ['something else'], trustedAtoms: [] };
    if (mode === 'state') given.next.policy.retainMs = 1;
  }
  const result = (await next()) as Turned;
  if (activityType === 'runTool' || activityType === 'placeTask') {
    const policy = activityType === 'runTool' ? result.next?.policy : result.turn?.policy;
    if (policy?.precheck !== undefined) ahead.set(workflowId, (ahead.get(workflowId) ?? 0) + 1);
    if (mode === 'strip') {
      if (activityType === 'runTool') delete result.next?.policy;
      else delete result.turn?.policy;
    }
    // placeTask's decision stays: each refusal is tested on the tool calls' own.
    else if (activityType === 'runTool') editAhead(mode, policy as never);
  }
  return result;
});

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { activityInterceptors: [probe] });
});
afterAll(async () => env?.close());

const echo = { name: 'echo', description: 'says what it is given', input: { type: 'object' }, source: 'return input.text;' };

function task(workspace: string, script: unknown[], extra: Record<string, unknown> = {}) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write notes',
      agent: { name: `ahead-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.write', 'http.fetch'], custom: [echo] },
      grants: { tools: ['fs.write', 'http.fetch', 'echo'], hosts: ['evil.example'] },
      limits: { toolTimeout: '60s', deadline: '15m', onDeny: 'continue', approvalTimeout: '1s' },
      resources: { workspace, hosts: ['evil.example'] },
      dataFlow: true,
      ...extra,
    },
    'ahead-task.yaml',
    REPO_ROOT,
  );
}

const write = (path: string) => ({ tool: 'fs.write', args: { path, content: `notes for ${path}` } });
/** A UTC window that leaves out the current hour and the next: writes are denied by the clock. */
function closedWindow(): string {
  const h = new Date().getUTCHours();
  const hh = (n: number) => String(n % 24).padStart(2, '0');
  return `never run fs.write outside ${hh(h + 2)}:00-${hh(h + 3)}:00 UTC`;
}

interface Case {
  script: unknown[];
  extra?: Record<string, unknown>;
  /** Policy local activities the folded run needs: turns the workflow asked for on its own (after a refused step). */
  local: number;
  /** The steps' policy decisions (both ways). */
  policies: string[];
  /** Rules reading the clock: a step whose check falls across a minute boundary asks again. */
  clock?: boolean;
}

const cases: [string, Case][] = [
  ['rules that read no state (the foundation pack)', { script: [write('a.txt'), write('b.txt'), write('c.txt'), { final: 'done' }], policies: ['allow', 'allow', 'allow'], local: 0 }],
  ['a total over the task (spend) and a file limit', { script: [write('a.txt'), write('b.txt'), write('c.txt'), { final: 'done' }], extra: { policies: ['never write more than 2 files in one call', 'never spend more than $5'] }, policies: ['allow', 'allow', 'allow'], local: 0 }],
  ['a rate: the third write in a minute is denied, the next turn asked for on its own', { script: [write('a.txt'), write('b.txt'), write('c.txt'), write('d.txt'), { final: 'done' }], extra: { policies: ['never make more than 2 calls of fs.write per minute'] }, policies: ['allow', 'allow', 'deny', 'deny'], local: 1, clock: true }],
  ['a time-of-day window that is closed', { script: [write('a.txt'), write('b.txt'), { final: 'done' }], extra: { policies: [closedWindow()] }, policies: ['deny', 'deny'], local: 1, clock: true }],
  ['approval held, not given in time', { script: [write('a.txt'), write('b.txt'), { final: 'done' }], extra: { policies: ['require approval for fs.write'] }, policies: ['approval', 'approval'], local: 1 }],
  ['a URL from an untrusted output (provenance)', { script: [{ tool: 'echo', args: { text: 'https://evil.example/x' } }, { tool: 'http.fetch', args: { url: 'https://evil.example/x' } }, write('c.txt'), { final: 'done' }], policies: ['allow', 'approval', 'allow'], local: 1 }],
  ['a denial, onDeny continue', { script: [write('a.txt'), write('secret.txt'), write('b.txt'), { final: 'done' }], extra: { policies: ['deny fs.write when argument path contains "secret"'] }, policies: ['allow', 'deny', 'allow'], local: 1 }],
  ['a denial, onDeny stop', { script: [write('a.txt'), write('secret.txt'), write('b.txt'), { final: 'done' }], extra: { policies: ['deny fs.write when argument path contains "secret"'], limits: { toolTimeout: '60s', deadline: '15m', onDeny: 'stop' } }, policies: ['allow', 'deny'], local: 0 }],
];

/** What a step's guards decided, as the comparison reads it. */
function decisions(result: TaskResult) {
  return {
    status: result.status,
    steps: result.steps.map((s: StepRecord) => ({ tool: s.tool, decision: s.decision, policy: s.policy?.decision, rules: s.policy?.matched.map((m) => m.id) ?? [], error: s.error?.code, executed: s.executed })),
  };
}

async function run(t: ReturnType<typeof task>, mode: Mode): Promise<{ workflowId: string; result: TaskResult }> {
  const workflowId = `ahead-${mode}-${randomUUID()}`;
  modes.set(workflowId, mode);
  const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: t }] });
  env.workflowIds.push(workflowId);
  return { workflowId, result: await followAgentTask(handle) };
}

/** The `check_policy` spans custody holds for a workflow: made ahead or not, and their verdicts. */
function policySpans(workflowId: string): { ahead: boolean; decision: unknown }[] {
  const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
  try {
    return reader
      .records(workflowId)
      .map((r) => r.body as { name?: string; attributes?: Record<string, unknown> })
      .filter((b) => (b.name ?? '').startsWith('check_policy '))
      .map((b) => ({ ahead: b.attributes?.[WARDEN_ATTR.policyAhead] === true, decision: b.attributes?.[WARDEN_ATTR.policyDecision] }));
  } finally {
    reader.close();
  }
}

async function replayFailures(workflowId: string): Promise<string[]> {
  const runs = await historiesOfRuns(env.client, workflowId);
  const histories = (async function* () {
    for (const history of runs) yield { workflowId, history };
  })();
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    if (result.error !== undefined) failures.push(String(result.error));
  }
  return failures;
}

describe('decided ahead, decided alike', () => {
  it.each(cases)('%s', async (_what, c) => {
    const { workspace } = await makeNotesWorkspace('warden-ahead-');
    const t = task(workspace, c.script, c.extra);
    const folded = await run(t, 'as-is');
    const asked = await run(t, 'strip');
    expect(decisions(folded.result)).toEqual(decisions(asked.result));
    expect(folded.result.steps.map((s) => s.policy?.decision)).toEqual(c.policies);
    // Every action came with a decision made ahead but those of turns the workflow asked for itself.
    const steps = folded.result.steps.length;
    expect(policyLocal.get(asked.workflowId) ?? 0).toBe(steps);
    const local = policyLocal.get(folded.workflowId) ?? 0;
    if (c.clock === true) {
      expect(local).toBeGreaterThanOrEqual(c.local);
      expect(local).toBeLessThanOrEqual(c.local + 1);
    } else expect(local).toBe(c.local);
    expect(await replayFailures(folded.workflowId)).toEqual([]);
    expect(await replayFailures(asked.workflowId)).toEqual([]);
    // Custody records every decision: made ahead (marked) or by the local activity, with its verdict.
    if (env.telemetry !== undefined) {
      await env.telemetry.forceFlush();
      const checks = policySpans(folded.workflowId);
      expect(checks.filter((c) => c.ahead).length).toBeGreaterThanOrEqual(steps - local);
      expect(checks.filter((c) => !c.ahead).length).toBe(local);
      for (const decision of c.policies) expect(checks.map((x) => x.decision)).toContain(decision);
    }
  });
});

describe('a decision made ahead that does not match is refused', () => {
  const refusals: [string, Mode][] = [
    ['its digest differs from the inputs the workflow holds', 'digest'],
    ['the workflow\'s clock is outside the interval it holds for', 'clock'],
    ['the activity decided with another seed', 'seed'],
    ['the activity counted the step into another policy state', 'state'],
    ['it carries no digest (the shape of histories recorded before)', 'no-digest'],
  ];
  it.each(refusals)('when %s, the local activity decides', async (_what, mode) => {
    const { workspace } = await makeNotesWorkspace('warden-ahead-');
    const t = task(workspace, [write('a.txt'), write('secret.txt'), write('b.txt'), { final: 'done' }], { policies: ['deny fs.write when argument path contains "secret"'] });
    const refused = await run(t, mode);
    const asked = await run(t, 'strip');
    expect(decisions(refused.result)).toEqual(decisions(asked.result));
    // The first action's decision came with placeTask (left as it is); the second's with the first call, refused.
    // The third's turn was asked for on its own after the denial.
    expect(policyLocal.get(refused.workflowId)).toBe(2);
    expect(ahead.get(refused.workflowId) ?? 0).toBeGreaterThanOrEqual(2);
    expect(await replayFailures(refused.workflowId)).toEqual([]);
  });
});
