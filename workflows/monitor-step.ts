/**
 * Detection and response in the agent loop. Every proposed action (also a refused one) is scored
 * against the agent's baseline and the hard signals (monitoring/score-action.ts), its score and
 * reasons are written into its step, and the task's response rules decide what happens:
 * alert, step-up (the action and every later one wait for a human), block (the agent issues no
 * more actions, its grant and so its sub-agents' credentials are revoked, running sub-agents are
 * told to stop) or remediate (block, then the saga's compensations run at once). `warden kill`
 * arrives here as the `warden.kill` Update and blocks and remediates by hand.
 *
 * Determinism: the baseline and the rules are read once per run by a local activity whose result
 * is in history; scoring and rule evaluation are pure functions of recorded data and the
 * workflow clock; responses are activities. Tasks started before monitoring existed
 * (no `MONITOR_PATCH` marker in their history) are not monitored.
 *
 * Invariants: once blocked, no action starts (checked before every action and before a final
 * answer can complete the task); a blocked task never completes or commits; a block revokes
 * before the workflow goes on.
 */
import { ActivityFailure, allHandlersFinished, ApplicationFailure, CancellationScope, condition, getExternalWorkflowHandle, isCancellation, proxyActivities, proxyLocalActivities, setHandler, uuid4 } from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import type { MonitorSetup } from '../activities/monitor-activities';
import { monitorRequestOf, type BeginMonitoringInput } from '../monitoring/monitor-request';
import { featuresOfAction, hash53, outcomeOfStep, type ActionFeatures, type MeasuredEffect, type NetworkEffect } from '../monitoring/action-features';
import type { EgressWatch } from '../monitoring/egress-watch';
import type { Alert } from '../monitoring/alert';
import type { AgentBaseline } from '../monitoring/baseline';
import { carriedAlerts, carryHistory, longestWindowMs, MAX_CARRIED_NAME, reclaimCarried, resumeHistory, type CarriedMonitor } from '../monitoring/monitor-carry';
import { holdRequestId } from '../monitoring/hold-request-id';
import { emptyHistory, recordOutcome, recordProposed, type MonitorEvent } from '../monitoring/monitor-history';
import { fireRules, strongerResponse, type FiredRule, type Response, type ResponseRule } from '../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed, usableBaseline, type ScoreReason, type ScoringOptions, type TreeHosts } from '../monitoring/score-action';
import type { PolicyRequest } from '../policies/engine/policy-request';
import { durationToMs } from '../task/duration';
import type { StepRecord, TaskResult } from '../task/task-run';
import type { AgentRun, StepAction } from './agent-run';
import { finishRun } from './agent-run';
import { blockSignal, killUpdate, killRequestSchema, subagentWorkflowId, type KillOutcome } from './definitions';
import { refuseUnapproved } from './guard-action';
import { LocalLane } from './local-lane';
import { TaskEnded } from './task-ended';

/** Tasks whose history has this marker are monitored (decided with every patch, workflow-patches.ts). */
export { MONITOR_PATCH } from './workflow-patches';

const { beginMonitoring, respondToAnomaly, authorizeKill, checkRevoked, recordAlertDelivery } = proxyLocalActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '200ms', maximumInterval: '5s' },
});

/** The webhook is outside Warden: retried for minutes, never in the way of a block. */
const { deliverAlert } = proxyActivities<WardenActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 6, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Steps whose monitor state is kept for their outcome; older ones are forgotten. */
const KEPT_STEPS = 64;

interface StepEntry {
  event: MonitorEvent;
  features: ActionFeatures;
  /** What the policy check measured and where the arguments came from (kept to score measured effects on top). */
  effect?: MeasuredEffect;
  provenance?: Record<string, string>;
  /** Rules that already fired for this action. */
  fired: Set<string>;
}

interface Blocked {
  reason: string;
  /** Who blocked the run: the monitor's rules, a person's kill, or the parent task's block. */
  by: Alert['source'];
  remediate: boolean;
  alertId: string;
}

export class TaskMonitor {
  /** False for runs started before monitoring existed (replayed histories). */
  readonly enabled: boolean;
  /** True once the baseline and rules are loaded. */
  private active = false;
  private baseline: AgentBaseline | undefined;
  /** A sub-agent without a usable baseline: its nearest ancestor's hosts (network scoring only). */
  private treeHosts: TreeHosts | undefined;
  private rules: ResponseRule[] = [];
  /** The task's actions so far; a continued data-flow run starts from its previous run's summary (`resume`). */
  private history = emptyHistory();
  /** Long names whose carried counts were already taken back under the full name (`reclaim`). */
  private readonly reclaimed = new Set<string>();
  private armed: Record<string, boolean> = {};
  private readonly steps = new Map<number, StepEntry>();
  private stepUp: string | undefined;
  /** This run's key for naming its holds (`beginMonitoring`'s result, recorded in history). */
  private holdKey: string | undefined;
  private blocked: Blocked | undefined;
  private remediateRequested = false;
  /** The loop is over: the task is ending. */
  private settling = false;
  private alerts: Alert[] = [];
  private readonly deliveries: Promise<void>[] = [];
  private readonly runningChildren = new Set<string>();
  private alertCount = 0;

  /** True when the run scores network effects and holds new hosts at the egress (`patches.monitorNetwork`). */
  private readonly networkEnabled: boolean;

  /** The run's lane for local activities (local-lane.ts): the loop's and the handlers' go one at a time. */
  readonly lane: LocalLane;

  /**
   * @param enabled the run's `patches.monitor` (workflow-patches.ts) @param network its `patches.monitorNetwork`
   * @param lane its local-activity lane (`patches.localLane`)
   */
  constructor(enabled: boolean, network = false, lane = new LocalLane(false)) {
    this.enabled = enabled;
    this.networkEnabled = enabled && network;
    this.lane = lane;
  }

  /** Installs the kill Update and the block signal; call once, when the workflow starts. */
  install(run: AgentRun): void {
    if (!this.enabled) return;
    setHandler(
      killUpdate,
      async (request): Promise<KillOutcome> => {
        let who: Awaited<ReturnType<typeof authorizeKill>>;
        try {
          who = await this.lane.run(() => authorizeKill({ workflowId: run.workflowId, runId: run.runId, request }));
        } catch (error) {
          // The kill fails with the refusal itself (ERR_KILL_REFUSED and why), not a wrapped activity failure.
          const cause = error instanceof ActivityFailure ? error.cause : error;
          if (cause instanceof ApplicationFailure) throw ApplicationFailure.create({ type: cause.type ?? 'ERR_KILL_REFUSED', message: cause.message, nonRetryable: true });
          throw error;
        }
        const alert = this.newAlert(run, {
          source: 'kill',
          response: 'remediate',
          operator: who.operator,
          operatorKey: who.operatorKey,
          reason: request.reason ?? 'killed by hand',
          actionAt: request.requestedAt,
        });
        if (this.blocked !== undefined) {
          this.remediateRequested = true;
          await this.record(alert);
          return { workflowId: run.workflowId, status: 'already-blocked', operator: who.operator, alertId: alert.id };
        }
        if (this.settling) return { workflowId: run.workflowId, status: 'ended', operator: who.operator };
        const done = await this.block(run, alert, true);
        return { workflowId: run.workflowId, status: 'blocked', operator: who.operator, alertId: done.id, ...(done.blockedAt === undefined ? {} : { blockedAt: done.blockedAt }) };
      },
      {
        // Rejected here, a malformed or unsigned kill is never stored in history.
        validator: (request) => {
          const parsed = killRequestSchema().safeParse(request);
          if (!parsed.success) {
            throw ApplicationFailure.create({ type: 'ERR_KILL_REFUSED', message: `not a kill request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ')}`, nonRetryable: true });
          }
        },
      },
    );
    setHandler(blockSignal, async (notice) => {
      if (this.blocked !== undefined || this.settling || run.identity === undefined) return;
      // Anyone who can reach Temporal can send a signal: only a revoked grant makes it count.
      const check = await this.lane.run(() => checkRevoked({ grantId: run.identity!.grantId }));
      if (!check.revoked || this.blocked !== undefined) return;
      await this.block(run, this.newAlert(run, { source: 'parent', response: notice.remediate ? 'remediate' : 'block', reason: notice.reason }), notice.remediate);
    });
  }

  /**
   * Whether this run's monitor setup can come with its placement (`placeTask`'s `monitor` flag,
   * agent-task-flow.ts `begin`): it is monitored, has not begun, and reads no sub-agent grant's
   * ancestors (the placing worker builds the request from the task alone).
   */
  setupPlaceable(run: AgentRun): boolean {
    return this.enabled && !this.active && !this.readsAncestors(run);
  }

  /** Whether `beginMonitoring` for this run is given its sub-agent grant, to watch it with its nearest baselined ancestor's hosts. */
  private readsAncestors(run: AgentRun): boolean {
    return this.networkEnabled && !run.isRoot && run.identity !== undefined;
  }

  /** What `beginMonitoring` reads for this run. */
  private setupRequest(run: AgentRun): BeginMonitoringInput {
    const request = monitorRequestOf(run.workflowId, run.task);
    return this.readsAncestors(run) ? { ...request, grantId: run.identity!.grantId } : request;
  }

  /**
   * Reads the agent's baseline and the task's response rules (once per run), in the
   * `beginMonitoring` local activity unless `placed` brings them: the setup `placeTask` read for
   * this run ({@link setupPlaceable}), recorded in history as its result. Whether it did is in that
   * result, so a replay takes the same way: runs recorded before (or placed by a worker whose
   * code predates it, or whose read failed) have none, and ask the local activity as they did.
   */
  async begin(run: AgentRun, placed?: MonitorSetup): Promise<void> {
    if (!this.enabled || this.active) return;
    let setup = placed;
    if (setup === undefined) {
      const request = this.setupRequest(run);
      setup = await this.lane.run(() => beginMonitoring(request));
    }
    this.baseline = setup.baseline ?? undefined;
    // Runs recorded before it have no treeHosts in their marker: they replay as they ran.
    if (this.networkEnabled && setup.treeHosts !== undefined) this.treeHosts = setup.treeHosts;
    this.rules = setup.rules;
    // Counts carried under a long name's shortened key go back under the name before anything reads them.
    this.reclaim([
      ...this.rules.flatMap((r) => ('tools' in r.trigger ? (r.trigger.tools ?? []) : [])),
      ...run.task.grants.tools,
      ...run.task.tools.custom.map((t) => t.name),
    ]);
    // Runs recorded before it have no holdKey: their holds keep the id they drew (uuid4).
    if (setup.holdKey !== undefined) this.holdKey = setup.holdKey;
    this.active = true;
    this.assertRunning();
  }

  /**
   * Starts a continued data-flow run from what its previous run carried (monitor-carry.ts): the
   * same task scores and responds as if every step had run in this one. Call before `begin`; only
   * with a carried state Temporal vouched for (agent-task.ts `trustedFlowInput`).
   */
  resume(carried: CarriedMonitor): void {
    if (!this.enabled) return;
    this.history = resumeHistory(carried);
    this.reclaimed.clear();
    this.armed = { ...carried.armed };
    if (carried.stepUp !== undefined) this.stepUp = carried.stepUp;
    this.alerts = carried.alerts.map((a) => ({ ...a }));
  }

  /**
   * Before the run continues as new: waits for alert deliveries still on their way (they would be
   * dropped with the run), ends the task if it was blocked meanwhile, and returns what the next run
   * needs (undefined for an unmonitored run).
   */
  async handOver(): Promise<CarriedMonitor | undefined> {
    if (!this.enabled) return undefined;
    await CancellationScope.nonCancellable(() => Promise.all(this.deliveries));
    this.assertRunning();
    if (!this.active) return undefined;
    return {
      ...carryHistory(this.history, Date.now(), longestWindowMs(this.rules)),
      armed: { ...this.armed },
      ...(this.stepUp === undefined ? {} : { stepUp: this.stepUp }),
      alerts: carriedAlerts(this.alerts),
    };
  }

  /** Why the run is blocked (a kill, a block response, its parent's block); undefined while it is not. */
  get blockedReason(): string | undefined {
    return this.blocked?.reason;
  }

  /** Throws the task's end when it is blocked: no action starts after a block. */
  assertRunning(): void {
    if (this.blocked !== undefined) throw new TaskEnded('blocked', this.blocked.reason);
  }

  /**
   * Scores a proposed action on the effect the policy check measured, before the policy's verdict
   * is carried out (a refusal, a wait for approval, the call), and acts on the rules: a block
   * refuses the step and ends the task here.
   */
  async observe(run: AgentRun, action: StepAction, step: StepRecord, request: PolicyRequest | undefined): Promise<void> {
    this.assertRunning();
    if (!this.active) return;
    // Runs recorded before network scoring read no declared URLs (their replays score alike).
    const effect = request?.effect === undefined || this.networkEnabled ? request?.effect : { ...request.effect, urls: [] };
    const features = featuresOfAction(step.tool, step.args, effect, request?.provenance);
    const entry = this.track(step, features);
    if (effect !== undefined) entry.effect = effect;
    if (request?.provenance !== undefined) entry.provenance = request.provenance;
    if (action.type === 'spawn') this.runningChildren.add(subagentWorkflowId(run.workflowId, action.subagent, step.index));
    await this.evaluate(run, step, entry, scoreProposed(this.history, this.baseline, features, Date.now(), this.scoring()));
    this.endIfBlocked(step, entry);
  }

  /**
   * Scores a step again on the effect measured where it is applied: the sandbox host measures SQL
   * inside its transaction (issue 10), so the check before the call may have seen no rows. Called
   * when the host's policy gate stopped the call on that effect, before anyone is asked to approve
   * it; a block ends the task here, the effect never applied.
   */
  async measured(run: AgentRun, step: StepRecord, effect: { rowsChanged?: unknown; operation?: unknown } | undefined): Promise<void> {
    this.assertRunning();
    const entry = this.steps.get(step.index);
    if (!this.active || entry === undefined || typeof effect?.rowsChanged !== 'number' || entry.features.rows === effect.rowsChanged) return;
    // With network scoring, what was measured before (declared URLs, requests) and the provenance stay.
    const measured: MeasuredEffect = { ...(this.networkEnabled ? (entry.effect ?? {}) : {}), rowsChanged: effect.rowsChanged, ...(typeof effect.operation === 'string' ? { operation: effect.operation } : {}) };
    const features = featuresOfAction(step.tool, step.args, measured, this.networkEnabled ? entry.provenance : undefined);
    if (this.networkEnabled) entry.effect = measured;
    entry.features = features;
    entry.event.rows = features.rows;
    if (features.operation !== undefined) entry.event.operation = features.operation;
    await this.evaluate(run, step, entry, scoreProposed(this.history, this.baseline, features, Date.now(), this.scoring()));
    this.endIfBlocked(step, entry);
  }

  /**
   * What the ways out of this step's call ask before they connect (monitoring/egress-watch.ts):
   * the hosts the agent's baseline knows (never those the step itself names), and whether
   * a contact of any other host is held, decided by scoring the step as if it contacted one and
   * asking the response rules (without firing them). Undefined without a usable baseline (no host
   * is new then) or once the task is blocked.
   */
  egressWatch(run: AgentRun, step: StepRecord): EgressWatch | undefined {
    const entry = this.steps.get(step.index);
    // Known hosts: the agent's own usable baseline, else (a sub-agent) its nearest ancestor's.
    const b = usableBaseline(this.baseline) ?? this.treeHosts;
    if (!this.networkEnabled || !this.active || entry === undefined || b === undefined || this.blocked !== undefined) return undefined;
    // Only hosts the task grants can be reached at all: the rest of the baseline stays out of history.
    const granted = new Set(run.task.grants.hosts.map(hostnameOf));
    // Known hosts come from the learnt baseline only, never from the step watched: a host its
    // arguments name is as new as any other (it would otherwise whitelist itself). Unless a human
    // approved this very call (policy or monitor hold): then the hosts it was scored for were shown.
    const approved = step.approval?.status === 'approved' ? entry.features.hosts : [];
    const knownHosts = [...new Set([...b.hosts, ...approved])].filter((h) => granted.has(hostnameOf(h))).sort();
    const holds = (write: boolean): boolean => {
      // A name no URL can have: the probe is a host the baseline cannot know.
      const probe: ActionFeatures = { ...entry.features, hosts: [...entry.features.hosts, '(a new host)'], networkWrite: entry.features.networkWrite || write };
      const reasons = scoreProposed(this.history, this.baseline, probe, Date.now(), this.scoring());
      // Copies: asking the rules must not arm or disarm them.
      const fired = fireRules(this.rules, { history: this.history, baseline: this.baseline, features: probe, score: scoreOf(reasons), reasons, now: Date.now() }, { ...this.armed }, new Set(entry.fired));
      const response = fired.map((f) => f.response).reduce<Response | undefined>(strongerResponse, undefined);
      // A program cannot wait for a human mid-request: what the rules would hold for approval is held here.
      return response === 'step-up' || response === 'block' || response === 'remediate';
    };
    const hold = holds(false) ? 'all' : holds(true) ? 'writes' : 'none';
    return { knownHosts, hold, agent: b.agent };
  }

  /**
   * Scores a step again on what its call did on the network, measured where the requests left
   * (a user tool's http capability, the egress proxy of a program or MCP server): hosts contacted
   * (or held before they were), writes, bytes sent. A block ends the task here; what the call did
   * is rolled back with the rest.
   */
  async network(run: AgentRun, step: StepRecord, requests: readonly NetworkEffect[]): Promise<void> {
    this.assertRunning();
    const entry = this.steps.get(step.index);
    if (!this.networkEnabled || !this.active || entry === undefined || requests.length === 0) return;
    const effect: MeasuredEffect = { ...(entry.effect ?? {}), network: [...(entry.effect?.network ?? []), ...requests] };
    const features = featuresOfAction(step.tool, step.args, effect, entry.provenance);
    const before = entry.features;
    entry.effect = effect;
    entry.features = features;
    if (features.bytesOut !== undefined) entry.event.bytesOut = features.bytesOut;
    if (features.hosts.join(' ') === before.hosts.join(' ') && features.networkWrite === before.networkWrite && features.bytesOut === before.bytesOut) return;
    await this.evaluate(run, step, entry, scoreProposed(this.history, this.baseline, features, Date.now(), this.scoring()));
    this.endIfBlocked(step, entry);
  }

  /**
   * Just before an action that passed every guard runs: after a step-up, it waits for a human
   * first, unless the task's grants refuse the action (`refusedByGrants`: its tool refuses it at
   * once). Returns false when that approval was refused (the step is then refused like any denial).
   */
  async beforeRun(run: AgentRun, step: StepRecord, refusedByGrants = false): Promise<boolean> {
    this.assertRunning();
    const entry = this.steps.get(step.index);
    // A call the task's grants refuse runs to its tool's refusal at once: a human asked first could only approve what is then refused.
    if (!this.active || entry === undefined || this.stepUp === undefined || step.approval !== undefined || refusedByGrants) return true;
    // Unguessable, as for policy holds: nobody can name the request before it exists. Never from the
    // sandbox's random stream, which differs on replay (hold-request-id.ts); only runs recorded before
    // `beginMonitoring` drew a key still take uuid4(), as they did when they ran.
    const requestId = this.holdKey === undefined ? uuid4() : holdRequestId(this.holdKey, run.runId, step.index);
    const approval = await run.approvals.hold({ stepIndex: step.index, requestId, tool: step.tool, args: step.args, rules: [`monitor: ${this.stepUp}`] });
    step.approval = approval;
    this.assertRunningAfterWait(step, entry);
    if (approval.status !== 'approved') {
      entry.event.refused = true;
      refuseUnapproved(run, step, approval);
      return false;
    }
    step.reason = `approved by ${approval.approver}${approval.reason ? `: ${approval.reason}` : ''} (held by the monitor)`;
    return true;
  }

  /** Counts an action the guards refused (towards denial bursts), scoring it if it was not yet. */
  async refused(run: AgentRun, step: StepRecord | undefined): Promise<void> {
    if (!this.active || step === undefined || step.decision !== 'deny' || this.blocked !== undefined) return;
    const known = this.steps.get(step.index);
    if (known === undefined) {
      // Refused by the grant check, before the policy check measured anything.
      const features = featuresOfAction(step.tool, step.args);
      const entry = this.track(step, features);
      recordOutcome(entry.event, { refused: true });
      await this.evaluate(run, step, entry, scoreProposed(this.history, this.baseline, features, Date.now(), this.scoring()));
    } else {
      recordOutcome(known.event, { refused: true });
      const before = step.monitor?.reasons ?? [];
      const extra = scoreOutcome(this.history, this.baseline, known.features, { refused: true }, Date.now(), before);
      if (extra.length > 0) await this.evaluate(run, step, known, [...before, ...extra]);
    }
    this.assertRunning();
  }

  /** Adds what the action's outcome shows (failures, revoked credentials, a blocked sub-agent) and acts on it. */
  async afterRun(run: AgentRun, step: StepRecord): Promise<void> {
    const entry = this.steps.get(step.index);
    if (!this.active || entry === undefined) return;
    if (step.kind === 'spawn') this.runningChildren.delete(subagentWorkflowId(run.workflowId, step.tool.slice('spawn:'.length), step.index));
    const outcome = outcomeOfStep(step);
    recordOutcome(entry.event, outcome);
    if (this.blocked !== undefined) {
      this.assertRunning();
      return;
    }
    const before = step.monitor?.reasons ?? [];
    const extra = scoreOutcome(this.history, this.baseline, entry.features, outcome, Date.now(), before);
    if (extra.length > 0) await this.evaluate(run, step, entry, [...before, ...extra]);
    if (outcome.childStatus === 'blocked' && this.blocked === undefined) {
      // A blocked sub-agent blocks the whole task: its parent is remediated, whatever the rules say.
      const reasons = step.monitor?.reasons ?? extra;
      await this.block(
        run,
        this.newAlert(run, { source: 'subagent', response: 'remediate', step, score: step.monitor?.score ?? 100, reasons, reason: `sub-agent ${step.tool.slice('spawn:'.length)} was blocked` }),
        true,
      );
    }
    this.assertRunning();
  }

  /**
   * After the loop: a blocked task ends `blocked` (even if the model answered); without
   * remediation yet, it waits for `warden kill` until its approval timeout, then remediates.
   */
  async settle(run: AgentRun, result: TaskResult): Promise<TaskResult> {
    this.settling = true;
    if (this.blocked === undefined) return result;
    const ended = result.status === 'blocked' ? result : finishRun(run, 'blocked', this.blocked.reason);
    if (!this.remediateRequested) {
      run.state.status = 'blocked';
      const holdMs = Math.max(0, Math.min(durationToMs(run.task.limits.approvalTimeout), run.deadline.remainingMs()));
      try {
        await condition(() => this.remediateRequested, holdMs);
      } catch (error) {
        // Cancelled while held: remediate now.
        if (!isCancellation(error)) throw error;
      }
    }
    return ended;
  }

  /** Waits for webhook deliveries and handlers, and puts the alerts into the result. */
  async finish(result: TaskResult): Promise<void> {
    if (!this.enabled) return;
    this.settling = true;
    await CancellationScope.nonCancellable(async () => {
      await Promise.all(this.deliveries);
      await condition(allHandlersFinished);
    });
    if (this.alerts.length > 0) result.alerts = this.alerts.map((a) => ({ ...a }));
  }

  // --- internals ----------------------------------------------------------------------------

  private scoring(): ScoringOptions {
    return this.treeHosts === undefined ? {} : { treeHosts: this.treeHosts };
  }

  /** Long names (monitor-carry.ts `reclaimCarried`), each once per run: later events already carry the full name. */
  private reclaim(names: readonly (string | undefined)[]): void {
    const fresh = names.filter((n): n is string => n !== undefined && n.length > MAX_CARRIED_NAME && !n.includes('*') && !this.reclaimed.has(n));
    if (fresh.length === 0) return;
    for (const n of fresh) this.reclaimed.add(n);
    reclaimCarried(this.history, fresh);
  }

  private track(step: StepRecord, features: ActionFeatures): StepEntry {
    this.reclaim([features.tool, features.operation]);
    const event = recordProposed(this.history, features, step.index, Date.now());
    const entry: StepEntry = { event, features, fired: new Set() };
    this.steps.set(step.index, entry);
    this.steps.delete(step.index - KEPT_STEPS);
    return entry;
  }

  private refuse(step: StepRecord, reason: string): void {
    step.decision = 'deny';
    step.reason = reason;
    step.error = { code: 'ERR_TASK_BLOCKED', message: reason };
  }

  private assertRunningAfterWait(step: StepRecord, entry: StepEntry): void {
    this.endIfBlocked(step, entry, 'while it waited for approval');
  }

  /**
   * Once the run is blocked, refuses `step` and ends the task. The step says who stopped it: the
   * monitor's rules ("blocked by the monitor"), or a person's kill or the parent's block, whose
   * reason says so itself ("stopped: killed by …"); `when` qualifies it ("while it waited for approval").
   */
  private endIfBlocked(step: StepRecord, entry: StepEntry, when?: string): void {
    if (this.blocked === undefined) return;
    entry.event.refused = true;
    const who = this.blocked.by === 'kill' || this.blocked.by === 'parent' ? 'stopped' : 'blocked by the monitor';
    this.refuse(step, `${who}${when === undefined ? '' : ` ${when}`}: ${this.blocked.reason}`);
    throw new TaskEnded('blocked', this.blocked.reason);
  }

  /** Scores the step with `reasons`, fires the rules and carries out the strongest response. */
  private async evaluate(run: AgentRun, step: StepRecord, entry: StepEntry, reasons: ScoreReason[]): Promise<void> {
    const score = scoreOf(reasons);
    step.monitor = { ...(step.monitor ?? {}), score, reasons };
    const fired = fireRules(this.rules, { history: this.history, baseline: this.baseline, features: entry.features, score, reasons, now: Date.now() }, this.armed, entry.fired);
    if (fired.length === 0) return;
    for (const rule of fired) entry.fired.add(rule.id);
    const response = fired.map((f) => f.response).reduce<Response | undefined>(strongerResponse, undefined)!;
    step.monitor.response = strongerResponse(step.monitor.response, response);
    const alert = this.newAlert(run, { source: 'monitor', response, step, score, reasons, rules: fired });
    step.monitor.alertId = alert.id;
    if (response === 'block' || response === 'remediate') {
      await this.block(run, alert, response === 'remediate');
      return;
    }
    if (response === 'step-up') this.stepUp ??= fired.filter((f) => f.response === 'step-up').map((f) => `${f.id}: ${f.sentence}`)[0];
    await this.record(alert);
  }

  private newAlert(
    run: AgentRun,
    init: { source: Alert['source']; response: Response; step?: StepRecord; score?: number; reasons?: ScoreReason[]; rules?: FiredRule[]; operator?: string; operatorKey?: string; reason?: string; actionAt?: string },
  ): Alert {
    this.alertCount += 1;
    const reasons = init.reasons ?? [];
    return {
      id: `a-${hash53(`${run.runId}:${this.alertCount}`)}`,
      rootWorkflowId: run.rootWorkflowId,
      workflowId: run.workflowId,
      runId: run.runId,
      agent: run.task.agent.name,
      user: run.task.user,
      source: init.source,
      ...(init.step === undefined ? {} : { stepIndex: init.step.index, tool: init.step.tool, actionAt: init.step.startedAt }),
      score: init.score ?? scoreOf(reasons),
      reasons,
      rules: init.rules ?? [],
      response: init.response,
      ...(init.operator === undefined ? {} : { operator: init.operator }),
      ...(init.operatorKey === undefined ? {} : { operatorKey: init.operatorKey }),
      ...(init.reason === undefined ? {} : { reason: init.reason }),
      ...(init.actionAt === undefined ? {} : { actionAt: init.actionAt }),
      detectedAt: new Date(Date.now()).toISOString(),
    };
  }

  /** An alert without a block: recorded, printed, traced, delivered. */
  private async record(alert: Alert): Promise<void> {
    let done = alert;
    try {
      done = await this.lane.run(() => respondToAnomaly({ alert }));
    } catch {
      // The alert stays in the task's result; the store and the log missed it.
    }
    this.alerts.push(done);
    this.deliver(done);
  }

  /** Blocks the run: no more actions, waits interrupted, grant revoked, running sub-agents told. */
  private async block(run: AgentRun, alert: Alert, remediate: boolean): Promise<Alert> {
    if (this.blocked !== undefined) {
      if (remediate) this.remediateRequested = true;
      await this.record(alert);
      return alert;
    }
    const blocking = alert.rules.filter((r) => r.response === 'block' || r.response === 'remediate');
    const reason = alert.source === 'kill' ? `killed by ${alert.operator}: ${alert.reason}` : (alert.reason ?? blocking.map((r) => `${r.id} (${r.detail})`).join('; '));
    this.blocked = { reason, by: alert.source, remediate, alertId: alert.id };
    if (remediate) this.remediateRequested = true;
    run.state.status = 'blocked';
    run.approvals.interrupt(`the task was blocked: ${reason}`);
    // A tool call in flight is cancelled: its program is killed before the task goes on to its end.
    run.calls.stop(`the task was blocked: ${reason}`);
    let done = alert;
    try {
      done = await this.lane.run(() => respondToAnomaly({ alert, ...(run.identity === undefined ? {} : { revokeGrantId: run.identity.grantId }) }));
    } catch {
      // The block stands without it: no action starts, and the grant is revoked when the task ends.
    }
    this.alerts.push(done);
    this.deliver(done);
    for (const childId of this.runningChildren) {
      getExternalWorkflowHandle(childId)
        .signal(blockSignal, { reason: `the parent task was blocked: ${reason}`, remediate })
        .catch(() => undefined);
    }
    return done;
  }

  private deliver(alert: Alert): void {
    this.deliveries.push(
      CancellationScope.nonCancellable(async () => {
        let delivery: string;
        try {
          delivery = await deliverAlert({ alert });
        } catch {
          delivery = 'failed';
          await this.lane.run(() => recordAlertDelivery({ alertId: alert.id, delivery })).catch(() => undefined);
        }
        const stored = this.alerts.find((a) => a.id === alert.id);
        if (stored !== undefined) stored.delivery = delivery;
      }),
    );
  }
}

/** The name part of `host[:port]`, lower-cased; an IPv6 literal without its brackets (grants may spell it bare). */
function hostnameOf(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) return lower.slice(1, Math.max(1, lower.indexOf(']')));
  return (lower.match(/:/g) ?? []).length > 1 ? lower : lower.split(':')[0]!;
}
