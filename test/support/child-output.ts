/**
 * Waiting on what a child process prints, as an event: resolves when the text appears, rejects
 * (with everything printed so far) when the process exits first. No polling and no guessed
 * wall-clock budget: the test's own timeout is the only limit, so a slow machine is only slow.
 */
import type { ChildProcess } from 'node:child_process';

export interface CollectedOutput {
  stdout: string;
  stderr: string;
}

/** Collects a child's stdout and stderr as they arrive. */
export function collectOutput(child: ChildProcess): CollectedOutput {
  const out: CollectedOutput = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  return out;
}

/** Resolves once `stream` of `child` has printed text matching `pattern` (checked on every chunk). */
export function waitForOutput(child: ChildProcess, collected: CollectedOutput, stream: 'stdout' | 'stderr', pattern: string | RegExp): Promise<string> {
  const matches = () => (typeof pattern === 'string' ? collected[stream].includes(pattern) : pattern.test(collected[stream]));
  if (matches()) return Promise.resolve(collected[stream]);
  return new Promise((resolve, reject) => {
    const source = child[stream];
    const onData = () => {
      // Run after collectOutput's own listener has appended the chunk.
      setImmediate(() => {
        if (!matches()) return;
        cleanup();
        resolve(collected[stream]);
      });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      reject(new Error(`the process exited (${signal ?? `code ${code}`}) before printing ${String(pattern)}\n--- stdout ---\n${collected.stdout}\n--- stderr ---\n${collected.stderr}`));
    };
    const cleanup = () => {
      source?.off('data', onData);
      child.off('exit', onExit);
    };
    source?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** The exit code (or signal) of a child, as a promise that is there from the start. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Sends SIGTERM to each child still running and resolves once every one of them has exited. */
export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
}
