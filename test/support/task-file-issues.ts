/** The problems the task loader finds in a task document, for tests that check its messages. */
import { TaskFileError } from '../../errors';
import { parseTask } from '../../task/load-task-file';

/**
 * Each issue `parseTask` reports for `document` (as read from `/tmp/task.yaml`), in its order;
 * empty when the document loads. Any other error is thrown.
 */
export function taskFileIssuesOf(document: unknown): { path: string; message: string }[] {
  try {
    parseTask(document, 'task.yaml', '/tmp');
  } catch (error) {
    if (error instanceof TaskFileError) return [...error.issues];
    throw error;
  }
  return [];
}
