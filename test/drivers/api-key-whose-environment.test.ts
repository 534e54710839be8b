/**
 * A missing API key names whose environment was read (newcomer s22: the key was set in the shell
 * of `warden run`, a standalone `warden worker` started without it ran the task, and the error
 * said only "not set").
 */
import { describe, expect, it } from 'vitest';
import { readApiKey } from '../../drivers/provider-client';

describe('a missing API key', () => {
  it.each([
    ['unset', {}],
    ['empty', { OPENAI_API_KEY: '' }],
  ])('%s: names the variable, the worker that looked, and what a standalone worker has', (_name, env) => {
    let message = '';
    try {
      readApiKey('gpt-4o', 'OPENAI_API_KEY', env);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('OPENAI_API_KEY');
    expect(message).toContain(`the worker that ran the call (pid ${process.pid})`);
    expect(message).toContain('a standalone `warden worker` has the environment it was started with');
  });

  it('set: is read', () => {
    expect(readApiKey('gpt-4o', 'OPENAI_API_KEY', { OPENAI_API_KEY: 'sk-test' })).toBe('sk-test');
  });
});
