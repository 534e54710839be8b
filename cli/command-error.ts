/**
 * How a command that was given `--json` reports that it failed: the usual line on stderr
 * (`warden <command>: <code>: <message>`, for a person), and one JSON object on stdout for the
 * script that reads it, `{ ...context, error: { code, message } }`. The `error` member has the
 * shape of a step's error in `warden run --json` and of the console API's errors, so a script
 * tells a failure from a result by `error` alone. Without `--json`, only the stderr line.
 */
import type { CliIo } from './cli-io';
import { terminalJson, terminalLines } from '../terminal-text';

/** A failure as a command reports it: a stable code (errors.ts) and a message for people. */
export interface CommandFailure {
  code: string;
  message: string;
}

/**
 * Prints `failure` of `command` (e.g. `snapshots`) on stderr and, with `json`, as one object on
 * stdout: `context` (what the command was asked about, e.g. `{ workflowId }`) and `error`.
 */
export function printCommandError(io: CliIo, command: string, failure: CommandFailure, options: { json: boolean; context?: Record<string, unknown> }): void {
  io.stderr(`${terminalLines(`warden ${command}: ${failure.code}: ${failure.message}`)}\n`);
  if (options.json) io.stdout(`${terminalJson({ ...options.context, error: { code: failure.code, message: failure.message } })}\n`);
}
