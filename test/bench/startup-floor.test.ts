/**
 * The `startup` section's note on what `warden run` with its own worker adds beyond a bare
 * Temporal worker's start: the figure the issue's `warden run` target is read against.
 */
import { describe, expect, it } from 'vitest';
import { ownWorkerFloorNote } from '../../bench/sections/startup';

describe("warden run's own share beyond a bare worker's start", () => {
  it.each([
    // run, bare worker start, task → added to the task, Warden's own share
    { run: 1662, bare: 1161, task: 160, added: 1502, own: 341 },
    { run: 1200, bare: 1000, task: 200, added: 1000, own: 0 },
    { run: 900.4, bare: 1000, task: 100, added: 800, own: -200 },
  ])('run $run ms, bare worker $bare ms, task $task ms: adds $added, own share $own', ({ run, bare, task, added, own }) => {
    const note = ownWorkerFloorNote(run, bare, task);
    expect(note).toContain(`adds ${added} ms to the task`);
    expect(note).toContain(`start alone takes ${bare} ms`);
    expect(note).toContain(`Warden's own share is ${own} ms`);
  });
});
