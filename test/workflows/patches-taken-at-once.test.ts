/**
 * `warden-patches-at-once` stands for a frozen list of patches (workflows/workflow-patches.ts
 * `PATCHES_TAKEN_AT_ONCE`). A run that recorded it ran with exactly those patches; a patch made
 * later must still be asked on its own in such a run, or its replay would take a patch the run
 * never had (nondeterminism). The first version answered true for any id once the marker was
 * recorded: the next patch added (undoref's `warden-undo-what-ran`) would have been taken on
 * replay by every run recorded between the two.
 */
import { describe, expect, it } from 'vitest';
import * as patches from '../../workflows/workflow-patches';
import { askPatches, PATCHES_AT_ONCE_PATCH, PATCHES_TAKEN_AT_ONCE } from '../../workflows/workflow-patches';

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

/** A stand-in for the SDK's `patched`: answers from `recorded`, and logs what was asked. */
function sdk(recorded: ReadonlySet<string>) {
  const asked: string[] = [];
  return { asked, patched: (id: string) => (asked.push(id), recorded.has(id)) };
}

describe('the patches a run takes at once', () => {
  it('are the frozen list', () => {
    expect([...PATCHES_TAKEN_AT_ONCE].sort()).toEqual(FROZEN);
  });

  it.each(FROZEN)('%s is taken without a marker of its own in a run that took them at once', (id) => {
    const { asked, patched } = sdk(new Set([PATCHES_AT_ONCE_PATCH]));
    expect(askPatches(patched)(id)).toBe(true);
    expect(asked).toEqual([PATCHES_AT_ONCE_PATCH]);
  });

  // Every patch id this module exports (`*_PATCH`) but the frozen ones, and one made after this test.
  const later = [
    ...Object.entries(patches).flatMap(([name, id]) => (name.endsWith('_PATCH') && typeof id === 'string' && id !== PATCHES_AT_ONCE_PATCH && !FROZEN.includes(id) ? [id] : [])),
    'warden-a-later-patch',
  ];
  it.each(later)('%s, not in the list, is asked on its own even in a run that took the list at once', (id) => {
    const taken = sdk(new Set([PATCHES_AT_ONCE_PATCH]));
    expect(askPatches(taken.patched)(id)).toBe(false);
    expect(taken.asked).toEqual([PATCHES_AT_ONCE_PATCH, id]);
    const recorded = sdk(new Set([PATCHES_AT_ONCE_PATCH, id]));
    expect(askPatches(recorded.patched)(id)).toBe(true);
  });

  it.each(FROZEN)('%s is asked on its own in a run recorded before the at-once patch', (id) => {
    const before = sdk(new Set(FROZEN.filter((other) => other !== id)));
    expect(askPatches(before.patched)(id)).toBe(false);
    expect(before.asked).toEqual([PATCHES_AT_ONCE_PATCH, id]);
  });
});
