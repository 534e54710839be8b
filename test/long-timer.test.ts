/**
 * long-timer.ts: a long timer fires once its whole delay has passed, for delays either side of
 * 2^31 - 1 ms (Node's cap, past which a bare `setTimeout` fires after 1 ms). On vitest's fake
 * clock, which keeps Node's cap (a longer delay is 1 ms), so the bare-timer row shows the fault.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clearLongTimeout, libraryTimeoutMs, longDelay, longTimeoutSignal, MAX_TIMER_MS, setLongTimeout } from '../long-timer';
import { REPO_ROOT } from './support/warden-test-env';

const DAY = 86_400_000;
/** Delays either side of the cap, up to a task file's longest duration (30 days), and odd ones. */
const DELAYS = [1, 2, 999, 60_000, MAX_TIMER_MS - 1, MAX_TIMER_MS, MAX_TIMER_MS + 1, 2 ** 31, 2 * MAX_TIMER_MS, 2 * MAX_TIMER_MS + 1, 25 * DAY, 30 * DAY, 30 * DAY + 0.5];

describe('on a fake clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a bare setTimeout past the cap fires after 1 ms (the fault the helper exists for)', () => {
    const fired = vi.fn();
    setTimeout(fired, 25 * DAY);
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it.each(DELAYS)('a long timeout of %d ms fires once, not a millisecond early', (delay) => {
    const fired = vi.fn();
    setLongTimeout(fired, delay);
    vi.advanceTimersByTime(Math.ceil(delay) - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('random delays up to 30 days fire at their delay (property)', () => {
    for (let i = 0; i < 200; i += 1) {
      const delay = 1 + Math.floor(Math.random() * 30 * DAY);
      const fired = vi.fn();
      setLongTimeout(fired, delay);
      vi.advanceTimersByTime(delay - 1);
      expect(fired, `delay ${delay}`).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(fired, `delay ${delay}`).toHaveBeenCalledTimes(1);
    }
  });

  it.each([0, -5, Number.NaN])('a delay of %d is 1 ms, as Node has it', (delay) => {
    const fired = vi.fn();
    setLongTimeout(fired, delay);
    vi.advanceTimersByTime(0);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['before it fires', 1000, 10],
    ['a long one, before its first step', 25 * DAY, 10],
    ['a long one, after its first step', 30 * DAY, MAX_TIMER_MS + 10],
  ])('clear() stops it: %s', (_when, delay, clearAt) => {
    const fired = vi.fn();
    const timer = setLongTimeout(fired, delay);
    vi.advanceTimersByTime(clearAt);
    timer.clear();
    clearLongTimeout(timer);
    clearLongTimeout(undefined);
    vi.advanceTimersByTime(31 * DAY);
    expect(fired).not.toHaveBeenCalled();
  });

  it('longDelay resolves at its delay past the cap', async () => {
    let done = false;
    void longDelay(25 * DAY).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(25 * DAY - MAX_TIMER_MS);
    expect(done).toBe(true);
  });

  it('longTimeoutSignal past the cap aborts at its delay with a TimeoutError', () => {
    const signal = longTimeoutSignal(25 * DAY);
    vi.advanceTimersByTime(25 * DAY - 1);
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
  });
});

it("longTimeoutSignal within the cap is Node's own (aborts with a TimeoutError)", async () => {
  const signal = longTimeoutSignal(5);
  const reason = await new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
  expect((reason as DOMException).name).toBe('TimeoutError');
});

it('libraryTimeoutMs gives a library at most the cap', () => {
  expect([60_000, MAX_TIMER_MS, MAX_TIMER_MS + 1, 30 * DAY].map(libraryTimeoutMs)).toEqual([60_000, MAX_TIMER_MS, MAX_TIMER_MS, MAX_TIMER_MS]);
});

it('an unref()ed 30-day timer prints no overflow warning and does not keep the process alive', () => {
  const script = `const { setLongTimeout } = require(${JSON.stringify(join(REPO_ROOT, 'build', 'long-timer.js'))}); setLongTimeout(() => process.exit(3), 30 * 86400000).unref();`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
});
