/**
 * The bench never shares a task queue with a user's workers (issue: a `warden worker` of the
 * user's own state folder on a reused server took the bench's `warden run` task from the default
 * queue and refused it). Every task and worker the bench starts names a queue of the run's own.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchCliEnv, benchTaskQueue } from '../../bench/support/bench-task-queue';
import { checkTaskQueueName } from '../../dataplane/shared-storage';
import { TASK_QUEUE } from '../../workflows/definitions';

const BENCH = join(__dirname, '..', '..', 'bench');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'results' || name === 'data' ? [] : sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('the bench task queue', () => {
  it('is unique per call, valid, and never the default queue a user worker polls', () => {
    const queues = [benchTaskQueue(), benchTaskQueue(), benchTaskQueue('standalone')];
    expect(new Set(queues).size).toBe(3);
    for (const queue of queues) {
      expect(checkTaskQueueName(queue, 'bench')).toBe(queue);
      expect(queue).not.toBe(TASK_QUEUE);
      expect(queue).toMatch(/^warden-bench-/);
    }
  });

  it("a spawned warden CLI gets the bench's state folder and queue, whatever the user's environment says", () => {
    const env = benchCliEnv({ stateDir: '/repo/.warden-bench', taskQueue: 'warden-bench-1-abc' }, { PATH: '/bin', WARDEN_STATE_DIR: '/home/u/.warden', WARDEN_TASK_QUEUE: TASK_QUEUE });
    expect(env).toMatchObject({ PATH: '/bin', WARDEN_STATE_DIR: '/repo/.warden-bench', WARDEN_TASK_QUEUE: 'warden-bench-1-abc' });
  });

  // The class: any way a section starts a task or a worker. A new section that forgets the
  // queue fails here, not on a newcomer's machine.
  const starts: [string, RegExp, RegExp][] = [
    ['a `warden run` / `warden worker` process', /\[\s*(cli|join\([^\]]*'warden\.js'\))\s*,\s*'(run|worker)'/, /'--task-queue'/],
    ['startAgentTask', /\bstartAgentTask\(/, /\btaskQueue\b/],
    ['createWardenWorker / Worker.create', /\b(createWardenWorker|Worker\.create)\(/, /\btaskQueue\b/],
  ];
  it.each(starts)('every %s in bench/ names a task queue', (_what, start, named) => {
    const found: string[] = [];
    const unnamed: string[] = [];
    for (const file of sources(BENCH)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (!start.test(line) || line.trimStart().startsWith('*') || line.trimStart().startsWith('//')) return;
          found.push(`${relative(BENCH, file)}:${i + 1}`);
          if (!named.test(line)) unnamed.push(`${relative(BENCH, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found.length).toBeGreaterThan(0);
    expect(unnamed).toEqual([]);
  });
});
