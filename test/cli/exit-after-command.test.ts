/**
 * The `warden` process ends once its command returned, even when a library left a handle open
 * (issue 17: @temporalio/worker 1.24.0 keeps its workflow threads' MessagePort after a refused
 * `Worker.create`, and `warden run` never exited). bin/warden.js gives the process a grace after
 * the command's own clean-up (custody ledger closed, OTLP flushed), then ends it with the
 * command's exit code, stdout and stderr flushed. A process with nothing open still ends at once.
 *
 * Real parts: bin/warden.js as a child process; the open handle is a real MessagePort preloaded
 * with `node --require`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { collectOutput, exitOf, stopChildren } from '../support/child-output';
import { REPO_ROOT } from '../support/warden-test-env';

/** Far past bin/warden.js's grace (3 s): only a process that would never end takes this long. */
const NEVER_MS = 60_000;

it.each([
  ['a command that succeeded', ['--version'], 0, 'stdout', /^warden \d/],
  ['a usage error', ['no-such-command'], 2, 'stderr', /unknown command "no-such-command"/],
  ['a command that printed a lot', ['--help'], 0, 'stdout', /warden --version {10}the installed version/],
] as const)('after %s with a handle left open, the process ends with its exit code and output', async (_what, argv, code, stream, pattern) => {
  const child = spawn(process.execPath, ['--require', join(__dirname, 'fixtures', 'leave-a-handle-open.cjs'), join(REPO_ROOT, 'bin', 'warden.js'), ...argv], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  try {
    const outcome = await Promise.race([exitOf(child), new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), NEVER_MS))]);
    expect(outcome).toEqual({ code, signal: null });
    expect(output[stream]).toMatch(pattern);
  } finally {
    await stopChildren([child]);
  }
}, 120_000);

// A command whose awaited call was dropped without an answer (gRPC calls carrying a 70,000-character
// workflow id were), so its promise never settles and nothing keeps the process alive: it ended with
// exit 0 and no output, which a script reads as success.
it('a command that never answers ends with exit 1 and says so, never exit 0', async () => {
  const child = spawn(process.execPath, ['--require', join(__dirname, 'fixtures', 'drop-the-command.cjs'), join(REPO_ROOT, 'bin', 'warden.js'), 'list'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  try {
    expect(await exitOf(child)).toEqual({ code: 1, signal: null });
    expect(output.stderr).toMatch(/^warden: the command ended without an answer/);
    expect(output.stdout).toBe('');
  } finally {
    await stopChildren([child]);
  }
}, 120_000);
