/**
 * The side effects of monitoring: loading what a task's monitor needs when it begins (its agent's
 * baseline and the response rules of its packs), and acting on what the monitor decided in the
 * workflow: revoking the task's grant (a block), recording the alert in the state store, printing
 * it, putting it on the span (custody ledger, OpenTelemetry), and delivering it to the webhook.
 * `authorizeKill` is the one place a `warden kill` operator is checked.
 *
 * Invariants: a block revokes before anything else (the alert records when the credentials
 * stopped verifying, measured after the revocation committed); every function is idempotent per
 * alert id, because Temporal may run an activity again.
 */
import { randomBytes } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { MONITOR_ALERT_EVENT, WARDEN_ATTR } from '../custody/attributes';
import { MonitorError, WardenError } from '../errors';
import { verifyApprovalDecision } from '../identity/approval-decision';
import { actChainOf } from '../identity/agent-identity';
import { formatAlert, AlertSchema, type Alert } from '../monitoring/alert';
import { deliverAlertWebhook, type AlertWebhook } from '../monitoring/alert-webhook';
import type { AlertStore } from '../monitoring/alert-store';
import type { AgentBaseline } from '../monitoring/baseline';
import type { BaselineStore } from '../monitoring/baseline-store';
import { loadResponseRules } from '../monitoring/load-response-rules';
import type { BeginMonitoringInput } from '../monitoring/monitor-request';
import type { ResponseRule } from '../monitoring/response-rule';
import { usableBaseline, type TreeHosts } from '../monitoring/score-action';
import { annotateActiveSpan, rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { KILL_ACTION, KILL_REQUEST_ID, type KillRequest } from '../workflows/definitions';
import { DEFAULT_POLICY_PACKS } from './check-policy';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';
import { terminalJson, terminalLine } from '../terminal-text';

/** What a worker's monitor activities use. */
export interface MonitorServices {
  baselines: BaselineStore;
  alerts: AlertStore;
  /** Where each alert goes as it is raised (`warden worker`: stdout, one JSON object a line). */
  print?: (alert: Alert) => void;
  webhook?: AlertWebhook;
}

export interface MonitorSetup {
  /** The agent's learnt baseline, or null when none was learnt (hard signals only). */
  baseline: AgentBaseline | null;
  rules: ResponseRule[];
  /** Why the baseline is missing, when it is for a reason other than never having been learnt. */
  note?: string;
  /** Without a usable baseline of its own, a sub-agent's nearest ancestor's hosts (score-action.ts `TreeHosts`). */
  treeHosts?: TreeHosts;
  /**
   * 32 random bytes (base64url), drawn here so they are recorded in history: the run's monitor
   * holds are named from them (monitoring/hold-request-id.ts). Absent in runs recorded before.
   */
  holdKey?: string;
}

export interface RespondInput {
  alert: Alert;
  /** The grant to revoke (a block): the agent's own, which ends its sub-agents' with it. */
  revokeGrantId?: string;
}

export interface AuthorizeKillInput {
  workflowId: string;
  runId: string;
  request: KillRequest;
}

export interface AuthorizedKill {
  /** The registered approver who signed the kill. */
  operator: string;
  /** Their key's id. */
  operatorKey: string;
  authenticated: true;
}

function monitorOf(deps: ActivityDeps): MonitorServices {
  if (deps.monitor === undefined) throw new TypeError('this worker was created without monitor services');
  return deps.monitor;
}

/**
 * The agent names of a sub-agent's ancestors, root first: its grant's `act` chain (RFC 8693
 * section 4.1, signed by Warden: user, then each agent as `agent:<name>@<workflowId>`) without the
 * user and itself. Throws MonitorError ERR_MONITOR_TREE_UNKNOWN when the grant cannot be read: a
 * sub-agent whose tree is unknown must not be watched against nothing (the local activity retries,
 * then the task fails rather than run unwatched).
 */
async function ancestorsOf(deps: ActivityDeps, grantId: string): Promise<string[]> {
  const grant = deps.identity === undefined ? undefined : await deps.identity.stores.grants.getGrant(grantId);
  if (grant === undefined) throw new MonitorError('ERR_MONITOR_TREE_UNKNOWN', `the grant ${grantId} of this sub-agent is not in this worker's grant store, so its ancestors (and their baselines) are unknown`);
  // Agent names cannot hold "@" (SubagentNameSchema): the first one ends the name.
  return actChainOf(grant.claims.act)
    .slice(0, -1)
    .filter((id) => id.startsWith('agent:') && id.includes('@'))
    .map((id) => id.slice('agent:'.length, id.indexOf('@')));
}

/**
 * The hosts a sub-agent without a usable baseline of its own is watched and scored against: its
 * nearest ancestor's with a usable one (an unreadable baseline is skipped like a missing one).
 * Undefined when no ancestor has one: the sub-agent is then a new agent, as its root is.
 */
async function treeHostsOf(baselines: BaselineStore, ancestors: readonly string[]): Promise<TreeHosts | undefined> {
  for (const ancestor of [...ancestors].reverse()) {
    const found = usableBaseline((await baselines.get(ancestor).catch(() => undefined)) ?? undefined);
    if (found !== undefined) return { agent: found.agent, tasks: found.tasks, hosts: [...found.hosts].sort() };
  }
  return undefined;
}

/**
 * The agent's baseline and the task's response rules, and a new hold key: what a monitor starts
 * from. Read by `beginMonitoring`, and by `placeTask` for a data-flow root (which then needs no
 * local activity for it: activities/place-task.ts).
 */
export async function loadMonitorSetup(deps: ActivityDeps, input: BeginMonitoringInput): Promise<MonitorSetup> {
  const rules = loadResponseRules({ packs: input.packs ?? [...DEFAULT_POLICY_PACKS], sentences: input.sentences });
  const monitor = deps.monitor;
  const holdKey = randomBytes(32).toString('base64url');
  if (monitor === undefined) return { baseline: null, rules, note: 'this worker keeps no baselines', holdKey };
  let setup: MonitorSetup;
  try {
    setup = { baseline: (await monitor.baselines.get(input.agent)) ?? null, rules, holdKey };
  } catch (error) {
    // A baseline that does not parse mutes the baseline signals, not the task: hard signals still count.
    if (!(error instanceof MonitorError)) throw error;
    setup = { baseline: null, rules, note: error.message, holdKey };
  }
  // The task is the tree: a sub-agent never learnt is watched with its nearest baselined ancestor's hosts.
  if (input.grantId === undefined || usableBaseline(setup.baseline ?? undefined) !== undefined) return setup;
  const treeHosts = await treeHostsOf(monitor.baselines, await ancestorsOf(deps, input.grantId));
  return treeHosts === undefined ? setup : { ...setup, treeHosts };
}

export function createMonitorActivities(deps: ActivityDeps) {
  return {
    /** The agent's baseline and the task's response rules, read once when the task (or sub-agent) begins. */
    async beginMonitoring(input: BeginMonitoringInput): Promise<MonitorSetup> {
      return atActivityBoundary(async () => {
        annotateActiveSpan({ [WARDEN_ATTR.taskId]: rootWorkflowIdOf(input.workflowId), [WARDEN_ATTR.agentId]: `agent:${input.agent}@${input.workflowId}` });
        return loadMonitorSetup(deps, input);
      });
    },

    /**
     * Acts on one alert: revokes the grant first when it is a block, then records, prints and
     * traces the alert. Returns the alert with `blockedAt` and the times to block filled in.
     */
    async respondToAnomaly(input: RespondInput): Promise<Alert> {
      return atActivityBoundary(async () => {
        const monitor = monitorOf(deps);
        let alert = AlertSchema.parse(input.alert);
        if (input.revokeGrantId !== undefined) {
          if (deps.identity === undefined) throw new TypeError('this worker was created without identity services');
          const { stores } = deps.identity;
          const grant = await stores.grants.getGrant(input.revokeGrantId);
          const why = alert.source === 'kill' ? `killed by ${alert.operator ?? 'an operator'}` : `blocked by the monitor (${alert.rules.map((r) => r.id).join(', ') || alert.source})`;
          await stores.revocation.revokeGrant(input.revokeGrantId, why, undefined, grant === undefined ? {} : { expiresAt: grant.claims.exp * 1000 });
          const blockedAt = Date.now();
          alert = {
            ...alert,
            blockedAt: new Date(blockedAt).toISOString(),
            detectionToBlockMs: Math.max(0, blockedAt - Date.parse(alert.detectedAt)),
            ...(alert.actionAt === undefined ? {} : { actionToBlockMs: Math.max(0, blockedAt - Date.parse(alert.actionAt)) }),
          };
        }
        await monitor.alerts.record(alert);
        monitor.print?.(alert);
        annotateActiveSpan({
          [WARDEN_ATTR.taskId]: alert.rootWorkflowId,
          [WARDEN_ATTR.agentId]: `agent:${alert.agent}@${alert.workflowId}`,
          [WARDEN_ATTR.user]: alert.user,
          [WARDEN_ATTR.monitorAlertId]: alert.id,
          [WARDEN_ATTR.monitorScore]: alert.score,
          [WARDEN_ATTR.monitorResponse]: alert.response,
          [WARDEN_ATTR.monitorReasons]: alert.reasons.map((r) => `${r.signal}: ${r.detail}`),
          [WARDEN_ATTR.monitorRules]: alert.rules.map((r) => r.id),
          [WARDEN_ATTR.monitorDetectionToBlockMs]: alert.detectionToBlockMs,
          [WARDEN_ATTR.monitorOperator]: alert.operator,
        });
        trace.getActiveSpan()?.addEvent(MONITOR_ALERT_EVENT, {
          [WARDEN_ATTR.monitorAlertId]: alert.id,
          [WARDEN_ATTR.monitorResponse]: alert.response,
          [WARDEN_ATTR.monitorScore]: alert.score,
          ...(alert.stepIndex === undefined ? {} : { 'warden.step.index': alert.stepIndex }),
        });
        return alert;
      });
    },

    /** Delivers an alert to the webhook (retried by Temporal); records how it went. */
    async deliverAlert(input: { alert: Alert }): Promise<string> {
      return atActivityBoundary(async () => {
        const monitor = monitorOf(deps);
        const alert = AlertSchema.parse(input.alert);
        const { delivered } = await deliverAlertWebhook(monitor.webhook, alert);
        const delivery = delivered ? 'delivered' : 'not configured';
        await monitor.alerts.markDelivery(alert.id, delivery);
        return delivery;
      });
    },

    /** Records a delivery that failed for good (the workflow gave up retrying). */
    async recordAlertDelivery(input: { alertId: string; delivery: string }): Promise<void> {
      return atActivityBoundary(async () => monitorOf(deps).alerts.markDelivery(input.alertId, input.delivery));
    },

    /**
     * Checks a `warden kill`: it must be signed by a registered, unremoved approver's key over
     * exactly this run, the kill request id and action, and its reason, within the approval
     * signature's lifetime (identity/approval-decision.ts). Throws MonitorError ERR_KILL_REFUSED
     * saying which check failed.
     */
    async authorizeKill(input: AuthorizeKillInput): Promise<AuthorizedKill> {
      return atActivityBoundary(async () => {
        annotateActiveSpan({ [WARDEN_ATTR.taskId]: rootWorkflowIdOf(input.workflowId) });
        if (deps.approvers === undefined) throw new MonitorError('ERR_KILL_REFUSED', 'this worker has no approver registry, so no kill can be verified');
        let verified: { approver: string; kid: string };
        try {
          verified = await verifyApprovalDecision(deps.approvers, input.request.signature, {
            workflowId: input.workflowId,
            runId: input.runId,
            requestId: KILL_REQUEST_ID,
            action: KILL_ACTION,
            approved: true,
            ...(input.request.reason === undefined ? {} : { reason: input.request.reason }),
          });
        } catch (error) {
          if (error instanceof WardenError) throw new MonitorError('ERR_KILL_REFUSED', `the kill is not authenticated: ${error.message}`, { details: error.details as Record<string, unknown> });
          throw error;
        }
        annotateActiveSpan({ [WARDEN_ATTR.monitorOperator]: verified.approver });
        return { operator: verified.approver, operatorKey: verified.kid, authenticated: true };
      });
    },

    /** Whether a grant (or one of its ancestors) is revoked: what makes a sub-agent honour its parent's block. */
    async checkRevoked(input: { grantId: string }): Promise<{ revoked: boolean; reason?: string }> {
      return atActivityBoundary(async () => {
        if (deps.identity === undefined) throw new TypeError('this worker was created without identity services');
        const { stores } = deps.identity;
        const grant = await stores.grants.getGrant(input.grantId);
        const ids = [input.grantId, ...(grant?.claims.lineage ?? [])];
        const record = await stores.revocation.isRevoked(ids);
        return record === undefined ? { revoked: false } : { revoked: true, reason: record.reason };
      });
    },
  };
}

/**
 * `warden worker`'s alert line: the alert as one JSON object, typed `warden.alert`, one line. The
 * alert quotes an agent's action, so its text is JSON a terminal cannot act on, piped or not
 * (`terminalJson`, ../terminal-text.ts): a log collector's output may end on a terminal.
 */
export function alertJsonLine(alert: Alert): string {
  return `${terminalJson({ type: 'warden.alert', ...alert })}\n`;
}

/** `warden run`'s alert line, for people: one line, the agent's action in it made safe for a terminal (../terminal-text.ts). */
export function alertTextLine(alert: Alert): string {
  return `warden: ${terminalLine(formatAlert(alert))}\n`;
}
