/**
 * A custom tool's `source` is compiled where it runs, in the sandbox's isolate, as the body of
 * `async function (input, warden)` (sandbox/isolate-prelude.ts `run`). A body that does not parse
 * failed only when the agent first called the tool (ERR_SANDBOX_COMPILE, naming no line of the task
 * file; with `onDeny: continue` the task still completed, exit 0). The loader compiles each body
 * the same way, without running it, so such a file is refused at load like any other mistake.
 * Node's V8 is the isolate's (isolated-vm runs on the process's V8), so both parse alike.
 */
import type { Task } from './task-schema';
import type { TaskFileIssue } from '../errors';

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => unknown;

/** One issue per custom tool whose source does not parse as the body of `async (input, warden)`. */
export function toolSourceIssues(task: Pick<Task, 'tools'>): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  for (const [index, tool] of task.tools.custom.entries()) {
    if (typeof tool.source !== 'string') continue;
    try {
      // Compiles, never calls: nothing of the source runs here.
      new AsyncFunction('input', 'warden', tool.source);
    } catch (error) {
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      issues.push({ path: `tools.custom.${index}.source`, message: `the source of tool "${tool.name}" does not compile (${what}); it is the body of \`async function (input, warden)\`` });
    }
  }
  return issues;
}
