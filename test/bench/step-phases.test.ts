/**
 * Step phases from a history's own event times: a recorded real history (test/history-files/)
 * split by hand from its timestamps, steps that are not the common path left out, and the
 * section's one-line-per-phase notes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { phaseLines, STEP_PHASES, stepPhases, type StepPhases } from '../../bench/support/step-phases';

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
