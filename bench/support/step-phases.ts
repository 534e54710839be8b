/**
 * Where a step's wall-clock time goes, read from a finished workflow's Temporal history alone
 * (event timestamps, written by the server): no profiler, no sampling, same clock for both sides.
 *
 * A step is one attempt of the step activity (`runTool` for the guarded data flow, `bareAgentStep`
 * for the bare workflow); its cycle runs from its ActivityTaskScheduled event to the next step's,
 * and splits into phases that sum to the cycle exactly:
 * - `activity dispatch`: ActivityTaskScheduled -> ActivityTaskStarted (matching service + poll)
 * - `activity execution`: ActivityTaskStarted -> ActivityTaskCompleted (the worker's activity code)
 * - `completion -> workflow task`: ActivityTaskCompleted -> the next WorkflowTaskScheduled
 * - `workflow task dispatch`: WorkflowTaskScheduled -> WorkflowTaskStarted
 * - `workflow task`: WorkflowTaskStarted -> WorkflowTaskCompleted (workflow code, SDK, both ways of gRPC)
 * - `to next step`: WorkflowTaskCompleted -> the next step's ActivityTaskScheduled (0 when that
 *   workflow task scheduled it; otherwise further workflow tasks, local activities, other activities)
 * Event semantics: Temporal's history API (temporal/api/history/v1/message.proto).
 *
 * The guarded step's `activity execution` is split further with the custody ledger's span records
 * of the same activity (`guardedActivitySplit`): what comes before Warden's `execute_tool` span
 * (the SDK's delivery of the task, its decoding, the activity interceptors), the span itself (the
 * tool call, with the folded model turn and the policy decided ahead as its child spans), and what
 * comes after it (the custody flush, the result's encoding, the completion's round trip). A span
 * record's start is in whole milliseconds (its end is finer), so those parts are within 1 ms.
 */
import { temporal } from '@temporalio/proto';
import { LedgerReader } from '../../custody/ledger-reader';
import type { BenchContext } from '../bench-section';
import { summarize } from '../stats';
import { temporalBench, type TaskRun } from './temporal-bench';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = temporal.api.enums.v1.EventType;

export const STEP_PHASES = [
  'activity dispatch',
  'activity execution',
  'completion -> workflow task',
  'workflow task dispatch',
  'workflow task',
  'to next step',
] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/** One step's phases, ms (server timestamps, sub-millisecond). */
export type StepPhases = Record<StepPhase, number> & { cycle: number };

/** Milliseconds since the epoch of an event's `eventTime`. Throws when the event has none. */
export function eventTimeMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (t == null) throw new Error(`history event ${String(event.eventId)} has no eventTime`);
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

/**
 * Phases of each step of one history, in event order: one entry per step activity that has a
 * next step (so `steps - 1` entries), each with `cycle` = the sum of its phases. A step whose
 * activity did not complete in one attempt or whose next workflow task did not complete (a
 * retry, a timed-out workflow task) is left out, as its phases would not be the common path.
 * `events` are a history's events as `fetchHistory()` or `History.fromObject` give them.
 */
export function stepPhases(events: readonly HistoryEvent[], stepActivityType: string): StepPhases[] {
  const byId = new Map<number, HistoryEvent>();
  for (const e of events) byId.set(Number(e.eventId), e);
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === stepActivityType);
  const out: StepPhases[] = [];
  for (let i = 0; i + 1 < scheduled.length; i += 1) {
    const phases = oneStep(events, scheduled[i] as HistoryEvent, scheduled[i + 1] as HistoryEvent);
    if (phases !== undefined) out.push(phases);
  }
  return out;
}

function oneStep(events: readonly HistoryEvent[], scheduled: HistoryEvent, next: HistoryEvent): StepPhases | undefined {
  const scheduledId = Number(scheduled.eventId);
  const ofActivity = (type: number) => events.find((e) => e.eventType === type && Number(activityScheduledId(e)) === scheduledId);
  const started = ofActivity(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
  const completed = ofActivity(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
  if (started === undefined || completed === undefined || (started.activityTaskStartedEventAttributes?.attempt ?? 1) !== 1) return undefined;
  const wftScheduled = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED && Number(e.eventId) > Number(completed.eventId));
  if (wftScheduled === undefined) return undefined;
  const wftId = Number(wftScheduled.eventId);
  const wftStarted = events.find((e) => Number(e.workflowTaskStartedEventAttributes?.scheduledEventId ?? -1) === wftId);
  const wftCompleted = events.find((e) => Number(e.workflowTaskCompletedEventAttributes?.scheduledEventId ?? -1) === wftId);
  if (wftStarted === undefined || wftCompleted === undefined || Number(wftCompleted.eventId) > Number(next.eventId)) return undefined;
  const t = [scheduled, started, completed, wftScheduled, wftStarted, wftCompleted, next].map(eventTimeMs) as number[];
  const phases = Object.fromEntries(STEP_PHASES.map((name, k) => [name, (t[k + 1] as number) - (t[k] as number)])) as Record<StepPhase, number>;
  return { ...phases, cycle: (t[6] as number) - (t[0] as number) };
}

function activityScheduledId(e: HistoryEvent): unknown {
  return e.activityTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskCompletedEventAttributes?.scheduledEventId;
}

/**
 * One line per phase (and the whole cycle): guarded vs bare median and p99 in ms, and the
 * difference of the medians, from `guarded` and `bare` step phases pooled over tasks.
 */
export function phaseLines(guarded: readonly StepPhases[], bare: readonly StepPhases[]): string[] {
  const ms = (x: number) => x.toFixed(1);
  return [...STEP_PHASES, 'cycle' as const].map((phase) => {
    const g = summarize(guarded.map((s) => s[phase]));
    const b = summarize(bare.map((s) => s[phase]));
    return `step phase ${phase}: guarded median ${ms(g.median)} ms (p99 ${ms(g.p99)}) vs bare ${ms(b.median)} ms (p99 ${ms(b.p99)}), difference ${ms(g.median - b.median)} ms (n ${g.n}/${b.n}; server event times)`;
  });
}

/** What the split reads of a custody span record's body (custody/span-record.ts). */
export interface SpanTimes {
  name: string;
  spanId: string;
  parentSpanId: string | null;
  /** ISO 8601 with up to nanoseconds, UTC. */
  start: string;
  end: string;
  attributes: Record<string, unknown>;
}

export const ACTIVITY_PARTS = ['before the span', 'execute_tool span', 'folded model turn', 'policy decided ahead', 'after the span'] as const;
export type ActivityPart = (typeof ACTIVITY_PARTS)[number];

/** Milliseconds since the epoch of an ISO 8601 UTC time with up to nanoseconds (`Date.parse` keeps milliseconds only). */
export function isoTimeMs(iso: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(iso);
  if (match === null) throw new Error(`not an ISO 8601 UTC time: ${iso}`);
  return Date.parse(`${match[1]}Z`) + Number(`0.${match[2] ?? '0'}`) * 1000;
}

/**
 * The guarded step activity's execution split by its custody span records, one entry per
 * `runTool` attempt 1 that completed and whose `execute_tool` span (matched by
 * `temporalActivityId`, and `run_id` when both sides have one) is among `spans`; the folded model
 * turn and the policy decided ahead are that span's `chat` and `check_policy` children (0 when it
 * has none). `before the span` + `execute_tool span` + `after the span` is the phase exactly.
 */
export function guardedActivitySplit(events: readonly HistoryEvent[], spans: readonly SpanTimes[]): Record<ActivityPart, number>[] {
  const runId = events[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId ?? undefined;
  const out: Record<ActivityPart, number>[] = [];
  for (const scheduled of events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTool')) {
    const scheduledId = Number(scheduled.eventId);
    const started = events.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId ?? -1) === scheduledId);
    const completed = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1) === scheduledId);
    if (started === undefined || completed === undefined || (started.activityTaskStartedEventAttributes?.attempt ?? 1) !== 1) continue;
    const activityId = scheduled.activityTaskScheduledEventAttributes?.activityId;
    const span = spans.find(
      (s) =>
        s.name.startsWith('execute_tool ') &&
        s.attributes['temporalActivityId'] === activityId &&
        (runId === undefined || typeof s.attributes['run_id'] !== 'string' || s.attributes['run_id'] === runId),
    );
    if (span === undefined) continue;
    const child = (prefix: string) => {
      const found = spans.find((s) => s.parentSpanId === span.spanId && s.name.startsWith(prefix));
      return found === undefined ? 0 : isoTimeMs(found.end) - isoTimeMs(found.start);
    };
    const [spanStart, spanEnd] = [isoTimeMs(span.start), isoTimeMs(span.end)];
    out.push({
      'before the span': spanStart - eventTimeMs(started),
      'execute_tool span': spanEnd - spanStart,
      'folded model turn': child('chat '),
      'policy decided ahead': child('check_policy '),
      'after the span': eventTimeMs(completed) - spanEnd,
    });
  }
  return out;
}

/** One note: the medians (and p99) of each part of the guarded activity's execution. */
export function activitySplitLine(parts: readonly Record<ActivityPart, number>[]): string {
  const at = (part: ActivityPart) => {
    const s = summarize(parts.map((p) => p[part]));
    return `${part} ${s.median.toFixed(1)} ms (p99 ${s.p99.toFixed(1)})`;
  };
  return `guarded activity execution by custody spans (a span's start is recorded to 1 ms): ${ACTIVITY_PARTS.map(at).join(', ')}; the model turn and the policy run inside the execute_tool span; after the span: the custody flush, the result's encoding and the completion's round trip (n ${parts.length})`;
}

/**
 * The step section's phase notes: fetches every run's history and splits its steps (see
 * `stepPhases`), and the guarded activity by the bench ledger's span records of each run.
 */
export async function stepPhaseNotes(context: BenchContext, guarded: readonly TaskRun[], bare: readonly TaskRun[]): Promise<string[]> {
  const { client } = await temporalBench(context);
  const histories = new Map<string, HistoryEvent[]>();
  const historyOf = async (workflowId: string) => {
    let events = histories.get(workflowId);
    if (events === undefined) {
      events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      histories.set(workflowId, events);
    }
    return events;
  };
  const phasesOf = async (runs: readonly TaskRun[], activityType: string) => {
    const out: StepPhases[] = [];
    for (const run of runs) {
      const steps = stepPhases(await historyOf(run.workflowId), activityType);
      // The bench's cycles are between tool steps; the bare workflow's final answer is one more step activity.
      out.push(...steps.slice(0, run.stepCycles.length));
    }
    return out;
  };
  const lines = phaseLines(await phasesOf(guarded, 'runTool'), await phasesOf(bare, 'bareAgentStep'));
  return [...lines, await activitySplitNote(context, guarded, historyOf)];
}

async function activitySplitNote(context: BenchContext, runs: readonly TaskRun[], historyOf: (workflowId: string) => Promise<HistoryEvent[]>): Promise<string> {
  let ledger: LedgerReader;
  try {
    ledger = LedgerReader.open({ stateDir: context.stateDir });
  } catch (error) {
    return `guarded activity execution by custody spans: not split (${error instanceof Error ? error.message : String(error)})`;
  }
  try {
    const parts: Record<ActivityPart, number>[] = [];
    for (const run of runs) {
      const spans = ledger.records(run.workflowId).flatMap((r) => (r.kind === 'span' ? [r.body as unknown as SpanTimes] : []));
      parts.push(...guardedActivitySplit(await historyOf(run.workflowId), spans));
    }
    return parts.length === 0 ? 'guarded activity execution by custody spans: no runTool activity matched its execute_tool record' : activitySplitLine(parts);
  } finally {
    ledger.close();
  }
}
