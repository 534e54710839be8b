/** The task queue of `warden run`, `warden worker` and `warden mcp serve` when `--task-queue` is not given. */
import { describe, expect, it } from 'vitest';
import { defaultTaskQueue } from '../../cli/default-task-queue';
import { TASK_QUEUE } from '../../workflows/definitions';

describe('the default task queue', () => {
  it.each<[string, Record<string, string | undefined>, string]>([
    ['WARDEN_TASK_QUEUE when set', { WARDEN_TASK_QUEUE: 'team-a' }, 'team-a'],
    ['WARDEN_TASK_QUEUE trimmed', { WARDEN_TASK_QUEUE: '  team-b ' }, 'team-b'],
    ['Warden\'s default when unset', {}, TASK_QUEUE],
    ['Warden\'s default when blank', { WARDEN_TASK_QUEUE: '   ' }, TASK_QUEUE],
  ])('is %s', (_name, env, queue) => {
    expect(defaultTaskQueue(env)).toBe(queue);
  });
});
