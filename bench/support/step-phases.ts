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
 */
import { temporal } from '@temporalio/proto';
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

/** The step section's phase notes: fetches every run's history and splits its steps (see `stepPhases`). */
export async function stepPhaseNotes(context: BenchContext, guarded: readonly TaskRun[], bare: readonly TaskRun[]): Promise<string[]> {
  const { client } = await temporalBench(context);
  const phasesOf = async (runs: readonly TaskRun[], activityType: string) => {
    const out: StepPhases[] = [];
    for (const run of runs) {
      const steps = stepPhases((await client.workflow.getHandle(run.workflowId).fetchHistory()).events ?? [], activityType);
      // The bench's cycles are between tool steps; the bare workflow's final answer is one more step activity.
      out.push(...steps.slice(0, run.stepCycles.length));
    }
    return out;
  };
  return phaseLines(await phasesOf(guarded, 'runTool'), await phasesOf(bare, 'bareAgentStep'));
}
