/**
 * The naming rules for worker ids and task queue names (dataplane/worker-naming.ts): one schema
 * each, used by `warden worker|run|mcp serve`, `WARDEN_TASK_QUEUE`, `WARDEN_WORKER_ID`,
 * `startAgentTask` and `createWardenWorker`; the sub-agent handoff's cap on `<queue>@<id>` is
 * derived from the two bounds, so any valid pair fits it and Temporal's limit.
 */
import { describe, expect, it } from 'vitest';
import { checkTaskQueueName, checkWorkerId, dataPlaneQueueOf, workerIdOf } from '../../dataplane/shared-storage';
import { DATA_PLANE_QUEUE_MAX, TASK_QUEUE_NAME_MAX, TEMPORAL_TASK_QUEUE_MAX, WORKER_ID_MAX } from '../../dataplane/worker-naming';
import { SubagentHandoffSchema } from '../../task/task-run';

const BAD_IDS: [string, string, RegExp][] = [
  ["'@'", 'pod@7', /may hold only letters/],
  ['too long', 'w'.repeat(WORKER_ID_MAX + 1), /longer than 128 characters/],
  ['a slash (a path in workers/<id>.json)', '../etc', /may hold only letters/],
  ['a space', 'pod 7', /may hold only letters/],
  ['unicode', 'pöd-7', /may hold only letters/],
  ['a control character', 'pod\u00007', /may hold only letters/],
];

describe('worker ids', () => {
  it.each(BAD_IDS)('refuses an id with %s, naming WARDEN_WORKER_ID', (_what, id, words) => {
    expect(() => checkWorkerId('/state', { WARDEN_WORKER_ID: id })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(words) }));
    expect(() => checkWorkerId('/state', { WARDEN_WORKER_ID: id })).toThrow(/^WARDEN_WORKER_ID "/);
  });

  it.each([['a', 'a'], ['pod-7', 'pod-7'], ['max length', 'w'.repeat(WORKER_ID_MAX)], ['dots and underscores', 'eu.west_1-a']])('accepts %s', (_what, id) => {
    expect(checkWorkerId('/state', { WARDEN_WORKER_ID: id })).toBe(id);
  });

  it('an empty WARDEN_WORKER_ID means the default id, which always passes the rules', () => {
    expect(checkWorkerId('/state', { WARDEN_WORKER_ID: '  ' })).toBe(workerIdOf('/state', {}));
    expect(workerIdOf('/state', {})).toMatch(/^[A-Za-z0-9._-]{1,100}-[0-9a-f]{8}$/);
  });
});

describe('task queue names', () => {
  it.each([
    ["'@'", 'q@b', /holds '@'/],
    ['only @', '@', /holds '@'/],
    ['empty', '', /is empty/],
    ['too long', 'q'.repeat(TASK_QUEUE_NAME_MAX + 1), /longer than 200 characters/],
    ['a space', 'a b', /printable ASCII/],
    ['a newline', 'a\nb', /printable ASCII/],
    ['unicode', 'очередь', /printable ASCII/],
  ])('refuses a name with %s, naming where it came from', (_what, name, words) => {
    expect(() => checkTaskQueueName(name, '--task-queue')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(words) }));
    expect(() => checkTaskQueueName(name, '--task-queue')).toThrow(/^--task-queue "/);
  });

  it.each([['the default', 'warden-agent-tasks'], ['max length', 'q'.repeat(TASK_QUEUE_NAME_MAX)], ['punctuation', 'team/agents:eu.1']])('accepts %s', (_what, name) => {
    expect(checkTaskQueueName(name, '--task-queue')).toBe(name);
  });
});

describe('the data-plane queue of any valid pair fits the handoff and Temporal', () => {
  it('the bounds add up', () => {
    const longest = dataPlaneQueueOf('q'.repeat(TASK_QUEUE_NAME_MAX), 'w'.repeat(WORKER_ID_MAX));
    expect(longest.length).toBe(DATA_PLANE_QUEUE_MAX);
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(TEMPORAL_TASK_QUEUE_MAX);
  });

  it("the handoff schema's cap is DATA_PLANE_QUEUE_MAX (derived, not a number of its own)", () => {
    const cap = (q: string) => SubagentHandoffSchema.shape.dataPlane.unwrap().shape.taskQueue.safeParse(q).success;
    expect(cap('x'.repeat(DATA_PLANE_QUEUE_MAX))).toBe(true);
    expect(cap('x'.repeat(DATA_PLANE_QUEUE_MAX + 1))).toBe(false);
  });
});
