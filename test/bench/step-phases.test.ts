/**
 * Step phases from a history's own event times: a recorded real history (test/history-files/)
 * split by hand from its timestamps, steps that are not the common path left out, and the
 * section's one-line-per-phase notes; the guarded activity split by its custody span records.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { activitySplitLine, guardedActivitySplit, isoTimeMs, phaseLines, STEP_PHASES, stepPhases, type SpanTimes, type StepPhases } from '../../bench/support/step-phases';

type EventObject = Record<string, unknown> & { eventId: string; eventType: string };

/** The committed history of the original loop's inventory task: proposeTurn at events 21, 38, 46. */
function inventoryEvents(edit?: (events: EventObject[]) => void): temporal.api.history.v1.IHistoryEvent[] {
  const stored = JSON.parse(readFileSync(join(__dirname, '..', 'history-files', 'history-inventory.json'), 'utf8')) as { history: { events: EventObject[] } };
  edit?.(stored.history.events);
  return temporal.api.history.v1.History.fromObject(stored.history).events;
}

const byId = (events: EventObject[], id: number) => events.find((e) => Number(e.eventId) === id) as EventObject;

describe('stepPhases', () => {
  it('splits each step cycle at its activity and workflow task events, the phases summing to the cycle', () => {
    const steps = stepPhases(inventoryEvents(), 'proposeTurn');
    expect(steps).toHaveLength(2);
    // Step 1, by hand from the file (all events within second 1795636753; nanos):
    // scheduled 21 @4645110, started 23 @42683207, completed 24 @49162746, workflow task
    // scheduled 25 @49169526, started 26 @93648085, completed 27 @120277028, next proposeTurn 38 @205939049
    // (the runTool step between them is inside `to next step`).
    const first = steps[0] as StepPhases;
    const expected: Record<string, number> = {
      'activity dispatch': 38.038097,
      'activity execution': 6.479539,
      'completion -> workflow task': 0.00678,
      'workflow task dispatch': 44.478559,
      'workflow task': 26.628943,
      'to next step': 85.662021,
      cycle: 201.293939,
    };
    for (const [phase, ms] of Object.entries(expected)) expect(first[phase as keyof StepPhases], phase).toBeCloseTo(ms, 2);
    for (const step of steps) {
      const sum = STEP_PHASES.reduce((total, phase) => total + step[phase], 0);
      expect(sum).toBeCloseTo(step.cycle, 6);
      for (const phase of STEP_PHASES) expect(step[phase]).toBeGreaterThanOrEqual(0);
    }
    // Step 2 (38 -> 46): its workflow task (42) scheduled the next turn itself.
    expect((steps[1] as StepPhases)['to next step']).toBeLessThan(1);
  });

  it('gives no steps for an activity type that runs fewer than twice', () => {
    expect(stepPhases(inventoryEvents(), 'runTool')).toEqual([]);
    expect(stepPhases(inventoryEvents(), 'noSuchActivity')).toEqual([]);
    expect(stepPhases([], 'proposeTurn')).toEqual([]);
  });

  it.each([
    ['a retried activity (attempt 2)', (events: EventObject[]) => {
      (byId(events, 40).activityTaskStartedEventAttributes as { attempt: number }).attempt = 2;
    }],
    ['a workflow task that timed out instead of completing', (events: EventObject[]) => {
      const wft = byId(events, 44);
      wft.eventType = 'EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT';
      wft.workflowTaskTimedOutEventAttributes = { scheduledEventId: '42', startedEventId: '43', timeoutType: 'TIMEOUT_TYPE_START_TO_CLOSE' };
      delete wft.workflowTaskCompletedEventAttributes;
    }],
    ['an activity that never completed', (events: EventObject[]) => {
      events.splice(events.indexOf(byId(events, 41)), 1);
    }],
  ])('leaves out a step with %s, keeping the others', (_name, edit) => {
    const steps = stepPhases(inventoryEvents(edit), 'proposeTurn');
    expect(steps).toHaveLength(1);
    expect((steps[0] as StepPhases).cycle).toBeCloseTo(201.293939, 2);
  });

  it('names the event that has no time', () => {
    const events = inventoryEvents((all) => delete byId(all, 24).eventTime);
    expect(() => stepPhases(events, 'proposeTurn')).toThrow(/history event 24 has no eventTime/);
  });
});

describe('phaseLines', () => {
  it('gives one line per phase and the cycle, with both medians, p99s and their difference', () => {
    const step = (ms: number): StepPhases => ({ ...Object.fromEntries(STEP_PHASES.map((p) => [p, ms])), cycle: ms * STEP_PHASES.length }) as StepPhases;
    const lines = phaseLines([step(3), step(5), step(4)], [step(1), step(2)]);
    expect(lines).toHaveLength(STEP_PHASES.length + 1);
    expect(lines[0]).toBe('step phase activity dispatch: guarded median 4.0 ms (p99 5.0) vs bare 1.0 ms (p99 2.0), difference 3.0 ms (n 3/2; server event times)');
    expect(lines.at(-1)).toMatch(/^step phase cycle: guarded median 24\.0 ms \(p99 30\.0\) vs bare 6\.0 ms/);
  });
});

/** Seconds 1795636753 plus `ms` as a history event time. */
const at = (ms: number) => ({ seconds: '1795636753', nanos: Math.round(ms * 1e6) });
const iso = (ms: number) => `${new Date(1795636753000 + Math.floor(ms)).toISOString().slice(0, 19)}.${String(Math.round((1795636753000 + ms) * 1e6) % 1e9).padStart(9, '0')}Z`;

/** A runTool activity per entry: scheduled, started (with its attempt) and completed at the given ms. */
function toolHistory(activities: { id: string; started: number; completed: number; attempt?: number }[]): temporal.api.history.v1.IHistoryEvent[] {
  const events: Record<string, unknown>[] = [
    { eventId: '1', eventTime: at(0), eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED', workflowExecutionStartedEventAttributes: { originalExecutionRunId: 'run-1' } },
  ];
  let id = 2;
  for (const a of activities) {
    const scheduledId = id;
    events.push({ eventId: String(id++), eventTime: at(a.started - 1), eventType: 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED', activityTaskScheduledEventAttributes: { activityId: a.id, activityType: { name: 'runTool' } } });
    events.push({ eventId: String(id++), eventTime: at(a.started), eventType: 'EVENT_TYPE_ACTIVITY_TASK_STARTED', activityTaskStartedEventAttributes: { scheduledEventId: String(scheduledId), attempt: a.attempt ?? 1 } });
    events.push({ eventId: String(id++), eventTime: at(a.completed), eventType: 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED', activityTaskCompletedEventAttributes: { scheduledEventId: String(scheduledId) } });
  }
  return temporal.api.history.v1.History.fromObject({ events }).events;
}

function span(name: string, spanId: string, start: number, end: number, extra: { parent?: string; activityId?: string; runId?: string } = {}): SpanTimes {
  return {
    name,
    spanId,
    parentSpanId: extra.parent ?? null,
    start: iso(start),
    end: iso(end),
    attributes: { ...(extra.activityId === undefined ? {} : { temporalActivityId: extra.activityId }), ...(extra.runId === undefined ? {} : { run_id: extra.runId }) },
  };
}

describe('guardedActivitySplit', () => {
  it('reads an ISO time to the nanosecond', () => {
    expect(isoTimeMs('2026-12-01T19:40:09.780451348Z')).toBeCloseTo(Date.parse('2026-12-01T19:40:09.780Z') + 0.451348, 6);
    expect(isoTimeMs('2026-12-01T19:40:09Z')).toBe(Date.parse('2026-12-01T19:40:09Z'));
    expect(() => isoTimeMs('yesterday')).toThrow(/not an ISO 8601 UTC time: yesterday/);
  });

  it('splits each activity at its execute_tool span, with the span\'s model turn and policy children, the parts summing to the phase', () => {
    const events = toolHistory([
      { id: '5', started: 10, completed: 30.5 },
      { id: '9', started: 40, completed: 52 },
    ]);
    const spans = [
      span('execute_tool add', 'a', 14, 26.25, { activityId: '5', runId: 'run-1' }),
      span('chat scripted', 'b', 20, 21.5, { parent: 'a' }),
      span('check_policy add', 'c', 22, 22.75, { parent: 'a' }),
      // Another run's activity of the same id, and another span's children: not this activity's.
      span('execute_tool add', 'x', 11, 12, { activityId: '5', runId: 'run-0' }),
      span('chat scripted', 'y', 20, 29, { parent: 'x' }),
      span('execute_tool add', 'd', 41, 50, { activityId: '9' }),
    ];
    const parts = guardedActivitySplit(events, spans);
    expect(parts).toHaveLength(2);
    const expected = [
      { 'before the span': 4, 'execute_tool span': 12.25, 'folded model turn': 1.5, 'policy decided ahead': 0.75, 'after the span': 4.25 },
      { 'before the span': 1, 'execute_tool span': 9, 'folded model turn': 0, 'policy decided ahead': 0, 'after the span': 2 },
    ];
    parts.forEach((p, i) => {
      for (const [part, ms] of Object.entries(expected[i] as Record<string, number>)) expect(p[part as keyof typeof p], `${i} ${part}`).toBeCloseTo(ms, 3);
    });
    expect(parts[0]!['before the span'] + parts[0]!['execute_tool span'] + parts[0]!['after the span']).toBeCloseTo(20.5, 3);
  });

  it('leaves out a retried activity and one without its span record', () => {
    const events = toolHistory([
      { id: '5', started: 10, completed: 30, attempt: 2 },
      { id: '9', started: 40, completed: 52 },
    ]);
    expect(guardedActivitySplit(events, [span('execute_tool add', 'a', 14, 26, { activityId: '5' })])).toEqual([]);
  });

  it('gives one note with each part\'s median and p99', () => {
    const part = (ms: number) => ({ 'before the span': ms, 'execute_tool span': 2 * ms, 'folded model turn': 0.5, 'policy decided ahead': 0.25, 'after the span': 1 });
    expect(activitySplitLine([part(1), part(3), part(2)])).toBe(
      "guarded activity execution by custody spans (a span's start is recorded to 1 ms): before the span 2.0 ms (p99 3.0), execute_tool span 4.0 ms (p99 6.0), folded model turn 0.5 ms (p99 0.5), policy decided ahead 0.3 ms (p99 0.3), after the span 1.0 ms (p99 1.0); the model turn and the policy run inside the execute_tool span; after the span: the custody flush, the result's encoding and the completion's round trip (n 3)",
    );
  });
});
