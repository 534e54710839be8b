/**
 * The approval line says what happens at its deadline in both cases the workflow has
 * (workflows/approval-gate.ts waits until the approval timeout or the task's own deadline,
 * whichever is first). Newcomer s22: the line said "then it is denied", the task's 5m deadline
 * came first and the task ended TIMED_OUT instead.
 */
import { describe, expect, it } from 'vitest';
import { formatPendingApproval } from '../../cli/format-summary';

describe('a held action, as the CLI prints it', () => {
  it('names both ends of the wait: denied at the approval timeout, timed out at the task deadline', () => {
    const text = formatPendingApproval('wf-1', { requestId: '3', tool: 'sql.exec', args: { sql: 'DELETE FROM t' }, rules: ['r1'], requestedAt: '2026-12-03T10:00:00.000Z', expiresAt: '2026-12-03T10:05:00.000Z' });
    const line = text.split('\n').find((l) => l.includes('deadline:'))!;
    expect(line).toContain('2026-12-03T10:05:00.000Z');
    expect(line).toContain('denied');
    expect(line).toContain('the task ends timed out');
  });
});
