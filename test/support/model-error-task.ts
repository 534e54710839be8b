/**
 * A task whose model call fails with `message`: a hosted model (test/support/fake-openai-server.ts,
 * on loopback) answers HTTP 400 with that error message, which the task's reason quotes. For the
 * terminal views of others' text (test/cli/terminal-views-escaped.test.ts, tty-output.test.ts).
 */
import type { TaskResult } from '../../task/task-run';
import type { FakeOpenAIServer } from './fake-openai-server';
import type { WardenTestEnv } from './warden-test-env';

/** Runs a one-agent task on `env` whose model, `model`, fails its first call with `message`; resolves to the task's result. */
export function runTaskWithModelError(env: WardenTestEnv, model: FakeOpenAIServer, message: string): Promise<TaskResult> {
  model.enqueue({ kind: 'http', status: 400, body: JSON.stringify({ error: { message, type: 'invalid_request_error' } }) });
  return env.runTask({
    user: 'eve@example.com',
    intent: 'summarise the notes',
    agent: { name: 'assistant', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
  });
}
