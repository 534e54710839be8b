/**
 * What the worker keeps of the overlay's upper folder before a call that writes through the kernel
 * overlay (recovery/overlay-undo.ts `captureUpper`, `recordUpperChanges`, `unkeptChangesOf`): the
 * bytes of the files up to MAX_UPPER_CAPTURE_BYTES, sized by lstat (a sparse file is not read), and
 * of the larger ones only a stamp. Any change to a stamped file is reported (never a silent partial
 * undo); a sub-agent's program (`overBound: 'refuse'`) is refused instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureUpper, MAX_UPPER_CAPTURE_BYTES, recordUnkeptChanges, recordUpperChanges, undoOverlayCall, unkeptChangesOf } from '../../recovery/overlay-undo';
import { overlayPathsOf, overlayUndoDirOf } from '../../recovery/recovery-paths';
import { codeOf, makeTempDir } from './recovery-test-kit';

function upperWithBig(): string {
  const upper = makeTempDir('warden-capture-bound-');
  fs.writeFileSync(path.join(upper, 'small.txt'), 'small');
  fs.mkdirSync(path.join(upper, 'd'));
  fs.writeFileSync(path.join(upper, 'd', 'big.bin'), '');
  fs.truncateSync(path.join(upper, 'd', 'big.bin'), MAX_UPPER_CAPTURE_BYTES + 1);
  return upper;
}

describe('overlay capture past the bound', () => {
  it.each([
    { name: 'nothing done to the large file', act: () => {}, unkept: [] },
    { name: 'written in place, same size, mtime put back', act: (big: string) => {
      const { atime, mtime } = fs.statSync(big);
      const fd = fs.openSync(big, 'r+');
      fs.writeSync(fd, 'x', 0);
      fs.closeSync(fd);
      fs.utimesSync(big, atime, mtime);
    }, unkept: ['d/big.bin'] },
    { name: 'grown', act: (big: string) => fs.appendFileSync(big, 'x'), unkept: ['d/big.bin'] },
    { name: 'deleted', act: (big: string) => fs.unlinkSync(big), unkept: ['d/big.bin'] },
    { name: 'replaced by another file', act: (big: string) => { fs.unlinkSync(big); fs.writeFileSync(big, 'new'); }, unkept: ['d/big.bin'] },
    { name: 'its folder removed', act: (big: string) => fs.rmSync(path.dirname(big), { recursive: true }), unkept: ['d/big.bin'] },
  ])('$name: reported as $unkept', async ({ act, unkept }) => {
    const upper = upperWithBig();
    const before = await captureUpper(upper, { overBound: 'stamp' });
    expect([...before.files.keys()]).toEqual(['small.txt']);
    expect([...before.stamped.keys()]).toEqual(['d/big.bin']);
    act(path.join(upper, 'd', 'big.bin'));
    fs.writeFileSync(path.join(upper, 'small.txt'), 'changed');
    expect(await unkeptChangesOf(upper, before)).toEqual(unkept);
    // The kept files still get their undo record; the stamped one gets none (it could not restore it).
    const undoDir = path.join(makeTempDir('warden-capture-undo-'), 'undo');
    expect(await recordUpperChanges(upper, undoDir, before)).toEqual(['small.txt']);
  });

  it('refuses a sub-agent program past the bound (ERR_UNDO_FAILED), as before', async () => {
    expect(await codeOf(() => captureUpper(upperWithBig()))).toBe('ERR_UNDO_FAILED');
  });

  it("an unkept change handed over (a superseded MCP attempt's): the undo restores the rest, then fails closed naming it, every time", async () => {
    const stateDir = makeTempDir('warden-capture-handover-');
    const key = { stateDir, taskKey: 'task-1', callId: 'call-1' };
    const upper = overlayPathsOf(stateDir, key.taskKey).upper;
    fs.mkdirSync(upper, { recursive: true });
    fs.writeFileSync(path.join(upper, 'small.txt'), 'small');
    fs.writeFileSync(path.join(upper, 'big.bin'), '');
    fs.truncateSync(path.join(upper, 'big.bin'), MAX_UPPER_CAPTURE_BYTES + 1);
    const before = await captureUpper(upper, { overBound: 'stamp' });
    fs.appendFileSync(path.join(upper, 'big.bin'), 'x');
    fs.writeFileSync(path.join(upper, 'small.txt'), 'changed');
    const undoDir = overlayUndoDirOf(stateDir, key.taskKey, key.callId);
    await recordUpperChanges(upper, undoDir, before);
    await recordUnkeptChanges(undoDir, await unkeptChangesOf(upper, before));
    for (const time of [1, 2]) {
      const error = await undoOverlayCall(key).then(() => undefined, (e: unknown) => e as { code?: string; details?: Record<string, unknown> });
      expect({ time, code: error?.code, unkept: error?.details?.['unkept'] }).toEqual({ time, code: 'ERR_UNDO_FAILED', unkept: ['big.bin'] });
      expect(fs.readFileSync(path.join(upper, 'small.txt'), 'utf8')).toBe('small');
    }
  });
});
