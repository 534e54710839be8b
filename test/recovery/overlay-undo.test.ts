/**
 * One call's overlay writes undone on their own (how a sub-agent that did not complete leaves no
 * file behind): every path the call wrote gets back what the overlay held before the call, also
 * when the call wrote it several times; earlier and later calls are untouched; undo is idempotent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCompensation } from '../../recovery/run-compensation';
import { overlayUndoDirOf } from '../../recovery/recovery-paths';
import { openOverlay } from '../../recovery/workspace-overlay';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';
import { makeTempDir, read, writeTree } from './recovery-test-kit';

let stateDir: string;
let workspace: string;
let upper: string;
const taskKey = 'undo-task';

beforeEach(async () => {
  stateDir = makeTempDir('undo-state');
  workspace = makeTempDir('undo-ws');
  writeTree(workspace, { 'lower-only.txt': 'lower', 'both.txt': 'lower of both' });
  upper = (await openOverlay({ stateDir, taskKey, workspace })).upper;
});
afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(workspace, { recursive: true, force: true });
});

/** The fs capability of one call of a sub-agent (its writes recorded for undo). */
const callWrites = (callId: string) =>
  createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: upper, undo: overlayUndoDirOf(stateDir, taskKey, callId) });

const undo = (callId: string) => runCompensation({ kind: 'fs-overlay-undo', callId, forTool: 'fs.write' }, { stateDir, taskKey });

describe('fs-overlay-undo', () => {
  it.each([
    { name: 'a new file', path: 'new/deep/file.txt', before: undefined },
    { name: 'a workspace file first written in the overlay', path: 'lower-only.txt', before: 'lower' },
    { name: 'a file an earlier call wrote', path: 'both.txt', before: 'earlier call' },
  ])('undoes $name, also written twice in the call', async ({ path: file, before }) => {
    createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: upper }).write('both.txt', 'earlier call');
    const fsCap = callWrites('kid:1');
    fsCap.write(file, 'first');
    fsCap.write(file, 'second');
    expect(fsCap.read(file)).toBe('second');
    expect(await undo('kid:1')).toMatchObject({ status: 'done' });
    const reader = createFsCapability({ root: workspace, read: true, write: false, list: true, overlay: upper });
    if (before === undefined) expect(() => reader.read(file)).toThrow(/no such file/);
    else expect(reader.read(file)).toBe(before);
    // The earlier call's write stays; the workspace itself was never touched.
    expect(reader.read('both.txt')).toBe(file === 'both.txt' ? before : 'earlier call');
    expect(read(workspace, 'lower-only.txt')).toBe('lower');
    expect(await undo('kid:1')).toMatchObject({ status: 'nothing-to-do' });
  });

  it('undoes only its own call: a later call of another sub-agent keeps its writes', async () => {
    callWrites('kid:1').write('a.txt', 'kid');
    callWrites('other:1').write('b.txt', 'other');
    await undo('kid:1');
    const reader = createFsCapability({ root: workspace, read: true, write: false, list: true, overlay: upper });
    expect(() => reader.read('a.txt')).toThrow(/no such file/);
    expect(reader.read('b.txt')).toBe('other');
  });

  it('a call that wrote nothing has nothing to undo', async () => {
    expect(await undo('never-wrote')).toMatchObject({ status: 'nothing-to-do' });
  });
});
