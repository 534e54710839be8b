/**
 * `warden-patches-at-once` stands for a frozen list of patches (workflows/workflow-patches.ts
 * `PATCHES_TAKEN_AT_ONCE`). A run that recorded it ran with exactly those patches; a patch made
 * later must still be asked on its own in such a run, or its replay would take a patch the run
 * never had (nondeterminism). The first version answered true for any id once the marker was
 * recorded: the next patch added (undoref's `warden-undo-what-ran`) would have been taken on
 * replay by every run recorded between the two.
 *
 * `warden-patches-at-once-2` does the same for the patches made after the first list
 * (`PATCHES_TAKEN_AT_ONCE_2`), asked only in a run that took the first: a run recorded with the
 * first alone (test/history-files/history-patches-at-once-1-*) asks each of them on its own.
 */
import { describe, expect, it } from 'vitest';
import * as patches from '../../workflows/workflow-patches';
import { askPatches, PATCHES_AT_ONCE_2_PATCH, PATCHES_AT_ONCE_PATCH, PATCHES_TAKEN_AT_ONCE, PATCHES_TAKEN_AT_ONCE_2 } from '../../workflows/workflow-patches';

/** The list as it was when the at-once patch was made: never edit it (make a new at-once patch instead). */
const FROZEN = [
  'approval-update',
  'attest-claims',
  'call-key-run-and-call',
  'commit-failure-result',
  'mcp-pins-by-digest',
  'model-steps-by-digest',
  'recovery-keyed-by-run',
  'subagent-fs-undo',
  'subagent-handoff-verified',
  'subagent-program-undo',
  'warden-approval-notice',
  'warden-claim-check-outputs',
  'warden-close-not-completed-as-failed',
  'warden-commit-proof',
  'warden-data-flow-1',
  'warden-flow-call-deadline',
  'warden-flow-local-lane',
  'warden-history-budget',
  'warden-local-lane',
  'warden-monitor-1',
  'warden-monitor-carried',
  'warden-monitor-network',
  'warden-ordinary-affinity',
  'warden-policy-precheck',
  'warden-session-end-withdraws',
  'warden-status-search-attribute',
  'warden-stop-calls-in-flight',
  'warden-undo-ended-calls',
];

/** The second list as it was when its at-once patch was made: never edit it either. */
const FROZEN_2 = ['warden-not-run-vouched', 'warden-subagent-limits-inherited', 'warden-tool-undo-started', 'warden-undo-what-ran'];

/** A stand-in for the SDK's `patched`: answers from `recorded`, and logs what was asked. */
function sdk(recorded: ReadonlySet<string>) {
  const asked: string[] = [];
  return { asked, patched: (id: string) => (asked.push(id), recorded.has(id)) };
}

describe('the patches a run takes at once', () => {
  it('are the frozen lists', () => {
    expect([...PATCHES_TAKEN_AT_ONCE].sort()).toEqual(FROZEN);
    expect([...PATCHES_TAKEN_AT_ONCE_2].sort()).toEqual(FROZEN_2);
  });

  const bothMarkers = new Set([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH]);

  it.each([...FROZEN, ...FROZEN_2])('%s is taken without a marker of its own in a new run (both at-once markers)', (id) => {
    const { asked, patched } = sdk(bothMarkers);
    expect(askPatches(patched)(id)).toBe(true);
    expect(asked).toEqual([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH]);
  });

  it.each(FROZEN)('%s is taken without a marker of its own in a run that took the first list alone', (id) => {
    const { asked, patched } = sdk(new Set([PATCHES_AT_ONCE_PATCH]));
    expect(askPatches(patched)(id)).toBe(true);
    expect(asked).toEqual([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH]);
  });

  it.each(FROZEN_2)('%s is asked on its own in a run that took the first list alone', (id) => {
    const without = sdk(new Set([PATCHES_AT_ONCE_PATCH]));
    expect(askPatches(without.patched)(id)).toBe(false);
    expect(without.asked).toEqual([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH, id]);
    const recorded = sdk(new Set([PATCHES_AT_ONCE_PATCH, id]));
    expect(askPatches(recorded.patched)(id)).toBe(true);
  });

  // Every patch id this module exports (`*_PATCH`) but the frozen ones and the at-once patches, and one made after this test.
  const atOnce = [PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH];
  const later = [
    ...Object.entries(patches).flatMap(([name, id]) => (name.endsWith('_PATCH') && typeof id === 'string' && !atOnce.includes(id) && !FROZEN.includes(id) && !FROZEN_2.includes(id) ? [id] : [])),
    'warden-a-later-patch',
  ];
  it.each(later)('%s, in neither list, is asked on its own even in a run that took both at once', (id) => {
    const taken = sdk(bothMarkers);
    expect(askPatches(taken.patched)(id)).toBe(false);
    expect(taken.asked).toEqual([PATCHES_AT_ONCE_PATCH, PATCHES_AT_ONCE_2_PATCH, id]);
    const recorded = sdk(new Set([...bothMarkers, id]));
    expect(askPatches(recorded.patched)(id)).toBe(true);
  });

  it.each([...FROZEN, ...FROZEN_2])('%s is asked on its own in a run recorded before the at-once patches', (id) => {
    const before = sdk(new Set([...FROZEN, ...FROZEN_2].filter((other) => other !== id)));
    expect(askPatches(before.patched)(id)).toBe(false);
    // The second at-once marker is asked only in a run that took the first.
    expect(before.asked).toEqual([PATCHES_AT_ONCE_PATCH, id]);
  });
});
