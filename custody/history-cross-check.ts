/**
 * History versus ledger: every `proposeTurn` and `runTool` activity that ran to an end in a
 * workflow's Temporal history must have a custody record (the activity's span the worker
 * recorded as the attempt ended: `chat <model>` / `execute_tool <tool>` with `temporalActivityType`,
 * or `RunActivity:<type>` in older ledgers; or a record re-derived from history), and every such
 * record must belong to an activity of that history. Matching is by workflow id, run id,
 * activity type and activity id (Temporal's per-run activity sequence), so order and count are
 * both checked.
 *
 * Why re-derivation: the ledger append happens when the activity's span ends, inside the worker,
 * after the effect. A worker killed between the two loses the span; Temporal's history still
 * has the activity's completion, so `deriveMissingRecords` rebuilds a record from it (kind
 * `derived-from-history`, record key `history:<workflowId>:<eventId>`; appending the same key
 * twice is a no-op), and says so in the record, so nobody mistakes it for a worker's own span.
 */
import { createHash } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { TEMPORAL_ATTR } from './attributes';
import { canonicalSha256 } from './canonical-json';
import type { AppendInput } from './ledger';
import type { LedgerRecord } from './ledger-record';
import { activityTypeOfSpan } from './span-roles';

/** Activity types whose execution must be on record. */
export const CUSTODY_ACTIVITY_TYPES: readonly string[] = ['proposeTurn', 'runTool'];
/** `kind` of records re-derived from a Temporal history. */
export const DERIVED_RECORD_KIND = 'derived-from-history';

const EventType = temporal.api.enums.v1.EventType;
type IHistory = temporal.api.history.v1.IHistory;
type IHistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** One activity of a history that ran to an end (completed or failed) on some worker. */
export interface HistoryActivity {
  workflowId: string;
  runId: string;
  activityType: string;
  activityId: string;
  scheduledEventId: number;
  /** The event that closed it (completed or failed). */
  closedEventId: number;
  outcome: 'completed' | 'failed';
  /** ISO time of the closing event. */
  closedAt: string | undefined;
  /** For a failure: the ApplicationFailure type (Warden's error code), if any. */
  failureType?: string;
  /** Hex SHA-256 of the result payloads' data (completed activities). */
  resultSha256?: string;
  /** For `runTool`: the tool and the hash of its arguments, from the scheduled input. */
  toolName?: string;
  toolArgsSha256?: string;
}

/** Tool name and argument hash of a `runTool` input payload (JSON), when it decodes. */
function toolOfInput(payloads: temporal.api.common.v1.IPayloads | null | undefined): { toolName?: string; toolArgsSha256?: string } {
  const payload = payloads?.payloads?.[0];
  if (payload?.data === undefined || payload.data === null) return {};
  try {
    const input = JSON.parse(Buffer.from(payload.data).toString('utf8')) as { tool?: unknown; args?: unknown };
    if (typeof input.tool !== 'string') return {};
    return { toolName: input.tool, toolArgsSha256: canonicalSha256(input.args ?? {}) };
  } catch {
    return {};
  }
}

export interface HistoryMismatch {
  kind: 'missing-record' | 'record-without-history';
  workflowId: string;
  activityType: string;
  activityId: string;
  /** History event that closed the activity (missing-record). */
  eventId?: number;
  /** Custody record seqs (record-without-history). */
  seqs?: number[];
  message: string;
}

export interface CrossCheckReport {
  workflowId: string;
  runId: string;
  ok: boolean;
  /** Activities of the custody types in the history that ran to an end. */
  activities: number;
  /** activityId -> seqs of the custody records found for it. */
  matched: { activityType: string; activityId: string; seqs: number[] }[];
  mismatches: HistoryMismatch[];
}

function num(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(String(value));
}

function isoOf(time: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (time === null || time === undefined) return undefined;
  return new Date(num(time.seconds) * 1000 + Math.floor((time.nanos ?? 0) / 1e6)).toISOString();
}

function payloadsSha256(payloads: temporal.api.common.v1.IPayloads | null | undefined): string {
  const hash = createHash('sha256');
  for (const payload of payloads?.payloads ?? []) hash.update(payload.data ?? new Uint8Array());
  return hash.digest('hex');
}

/** The run id a history belongs to (from its start event). */
export function runIdOfHistory(history: IHistory): string {
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  return started?.originalExecutionRunId ?? started?.firstExecutionRunId ?? '';
}

/** Workflow ids of the child workflows a history started (sub-agents). */
export function childWorkflowIdsOf(history: IHistory): string[] {
  const ids: string[] = [];
  for (const event of history.events ?? []) {
    const id = event.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
    if (typeof id === 'string' && id !== '') ids.push(id);
  }
  return ids;
}

/** The custody-relevant activities of a history that ran to an end, in scheduling order. */
export function historyActivities(workflowId: string, history: IHistory, types: readonly string[] = CUSTODY_ACTIVITY_TYPES): HistoryActivity[] {
  const runId = runIdOfHistory(history);
  const scheduled = new Map<number, { activityType: string; activityId: string; toolName?: string; toolArgsSha256?: string }>();
  const out: HistoryActivity[] = [];
  for (const event of history.events ?? ([] as IHistoryEvent[])) {
    const eventId = num(event.eventId);
    if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      const attrs = event.activityTaskScheduledEventAttributes;
      const activityType = attrs?.activityType?.name ?? '';
      if (types.includes(activityType)) {
        scheduled.set(eventId, { activityType, activityId: attrs?.activityId ?? '', ...(activityType === 'runTool' ? toolOfInput(attrs?.input) : {}) });
      }
      continue;
    }
    const completed = event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED ? event.activityTaskCompletedEventAttributes : undefined;
    const failed = event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED ? event.activityTaskFailedEventAttributes : undefined;
    const closing = completed ?? failed;
    if (closing === undefined || closing === null) continue;
    const of = scheduled.get(num(closing.scheduledEventId));
    if (of === undefined) continue;
    const failureType = failed?.failure?.applicationFailureInfo?.type ?? undefined;
    out.push({
      workflowId,
      runId,
      ...of,
      scheduledEventId: num(closing.scheduledEventId),
      closedEventId: eventId,
      outcome: completed ? 'completed' : 'failed',
      closedAt: isoOf(event.eventTime),
      ...(failureType ? { failureType } : {}),
      ...(completed ? { resultSha256: payloadsSha256(completed.result) } : {}),
    });
  }
  return out;
}

interface SpanBodyLike {
  name?: unknown;
  attributes?: Record<string, unknown>;
}

/** Activity type, id and run id a custody record stands for, when it stands for an activity run. */
export function activityOfRecord(record: LedgerRecord): { activityType: string; activityId: string; runId: string | undefined } | undefined {
  const body = record.body as SpanBodyLike & { activityType?: unknown; activityId?: unknown; runId?: unknown };
  if (record.kind === DERIVED_RECORD_KIND) {
    if (typeof body.activityType !== 'string' || typeof body.activityId !== 'string') return undefined;
    return { activityType: body.activityType, activityId: body.activityId, runId: typeof body.runId === 'string' ? body.runId : undefined };
  }
  if (typeof body.name !== 'string') return undefined;
  const attributes = body.attributes ?? {};
  const activityType = activityTypeOfSpan(body.name, attributes);
  const activityId = attributes[TEMPORAL_ATTR.activityId];
  if (activityType === undefined || typeof activityId !== 'string') return undefined;
  const runId = attributes[TEMPORAL_ATTR.runId];
  return { activityType, activityId, runId: typeof runId === 'string' ? runId : undefined };
}

/**
 * Cross-checks one workflow's history against custody records (any superset of that workflow's:
 * records of other workflows, runs or activity types are ignored).
 */
export function crossCheckHistory(workflowId: string, history: IHistory, records: readonly LedgerRecord[], types: readonly string[] = CUSTODY_ACTIVITY_TYPES): CrossCheckReport {
  const activities = historyActivities(workflowId, history, types);
  const runId = runIdOfHistory(history);
  const bySlot = new Map<string, number[]>();
  for (const record of records) {
    if (record.workflowId !== workflowId) continue;
    const of = activityOfRecord(record);
    if (of === undefined || !types.includes(of.activityType)) continue;
    if (of.runId !== undefined && runId !== '' && of.runId !== runId) continue;
    const slot = `${of.activityType}#${of.activityId}`;
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), record.seq]);
  }
  const matched: CrossCheckReport['matched'] = [];
  const mismatches: HistoryMismatch[] = [];
  const inHistory = new Set<string>();
  for (const activity of activities) {
    const slot = `${activity.activityType}#${activity.activityId}`;
    inHistory.add(slot);
    const seqs = bySlot.get(slot);
    if (seqs === undefined) {
      mismatches.push({
        kind: 'missing-record',
        workflowId,
        activityType: activity.activityType,
        activityId: activity.activityId,
        eventId: activity.closedEventId,
        message: `history event ${activity.closedEventId} (${activity.activityType} activity ${activity.activityId} ${activity.outcome}) has no custody record`,
      });
    } else matched.push({ activityType: activity.activityType, activityId: activity.activityId, seqs });
  }
  for (const [slot, seqs] of bySlot) {
    if (inHistory.has(slot)) continue;
    const [activityType = '', activityId = ''] = slot.split('#');
    mismatches.push({
      kind: 'record-without-history',
      workflowId,
      activityType,
      activityId,
      seqs,
      message: `custody record${seqs.length === 1 ? '' : 's'} ${seqs.join(', ')} (${activityType} activity ${activityId}) match${seqs.length === 1 ? 'es' : ''} no completed activity in the history`,
    });
  }
  return { workflowId, runId, ok: mismatches.length === 0, activities: activities.length, matched, mismatches };
}

/** Ledger appends re-deriving the records a cross-check found missing, from the history. */
export function deriveMissingRecords(report: CrossCheckReport, history: IHistory, taskId: string, types: readonly string[] = CUSTODY_ACTIVITY_TYPES): AppendInput[] {
  const missing = new Set(report.mismatches.filter((m) => m.kind === 'missing-record').map((m) => m.eventId));
  return historyActivities(report.workflowId, history, types)
    .filter((activity) => missing.has(activity.closedEventId))
    .map((activity) => ({
      recordKey: `history:${activity.workflowId}:${activity.closedEventId}`,
      taskId,
      workflowId: activity.workflowId,
      kind: DERIVED_RECORD_KIND,
      body: {
        source: 'temporal-history',
        note: 'no span of this activity reached the ledger (e.g. its worker was killed); re-derived from the Temporal history',
        ...activity,
      },
    }));
}
