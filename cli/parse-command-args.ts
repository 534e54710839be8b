/**
 * The argument handling every sub-command shares: unknown or malformed options print one clear
 * line and the usage (exit 2), `--help` prints the usage (exit 0); anything else is the parsed
 * result. An option that takes one value may be given once, and no option an empty value (both
 * exit 2, naming the option); options declared `multiple` repeat. Node's own parser messages
 * ("To specify a positional argument starting with a '-'...") are rephrased: they describe the
 * parser, not the command.
 */
import { parseArgs } from 'node:util';
import type { CliIo } from './cli-io';
import { EXIT } from './exit-codes';
import { terminalLine, terminalLines } from '../terminal-text';
import { newWorkflowIdProblem, workflowIdProblem } from '../client/workflow-id';

/** One option as `node:util` parseArgs takes it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[] | boolean[];
}
type OptionValue<S> = S extends { type: 'boolean'; multiple: true } ? boolean[] : S extends { type: 'boolean' } ? boolean : S extends { multiple: true } ? string[] : string;
export type OptionValues<O> = { [K in keyof O]?: OptionValue<O[K]> } & { help?: boolean };

export interface ParsedCommandArgs<O> {
  values: OptionValues<O>;
  positionals: string[];
  /** Options and positionals in command-line order (for options that take a list, like --against). */
  tokens: ReadonlyArray<{ kind: 'option'; name: string; value?: string } | { kind: 'positional'; value: string } | { kind: 'option-terminator' }>;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Node's parser error as one line that names the option. */
function describeParseError(error: unknown, known: readonly string[]): string {
  const message = (error as Error).message;
  const code = (error as { code?: string }).code;
  // Node quotes the option as '--name', '--name <value>' or '-n, --name <value>': take the long name.
  const option = /(--[A-Za-z0-9][A-Za-z0-9-]*)/.exec(message)?.[1] ?? /'(-[A-Za-z0-9])/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) {
    return `unknown option ${option}${known.length > 0 ? ` (options: ${known.map((k) => `--${k}`).join(', ')})` : ' (this command takes no options)'}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    if (/argument missing/.test(message)) return `option ${option} needs a value`;
    // Node's "argument is ambiguous": the next word starts with "-", so it is not taken as the value.
    if (/ambiguous/.test(message)) return `option ${option} needs a value (a value that starts with "-" is written ${option}=<value>)`;
    return `option ${option} takes no value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return message.replace(/^Unexpected argument/, 'unexpected argument');
  return message;
}

/**
 * What is wrong with the options as given, beyond what Node's parser checks; undefined when
 * nothing is. An option that takes one value, given twice, is refused (Node's parser keeps the
 * last: `warden run --workflow-id a --workflow-id b` started b); an option declared `multiple`
 * may repeat. An option given an empty value (`--key=`, `--task ''`) is refused naming the
 * option: an empty value names no file, task or anything else an option takes.
 */
function optionValueProblem(tokens: ReadonlyArray<{ kind: string; name?: string; value?: string | undefined }>, options: Record<string, OptionSpec>): string | undefined {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue;
    const spec = options[token.name];
    if (spec === undefined) continue;
    if (spec.type === 'string' && token.value === '') return `option --${token.name} needs a value (it was given an empty one)`;
    if (spec.multiple === true || spec.type !== 'string') continue;
    if (seen.has(token.name)) return `option --${token.name} was given twice; give it once`;
    seen.add(token.name);
  }
  return undefined;
}

/** Parsed arguments, or the exit code when the command is already answered (bad usage, --help). */
export function parseCommandArgs<const O extends Record<string, OptionSpec>>(command: string, usage: string, argv: string[], io: CliIo, options: O): ParsedCommandArgs<O> | number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, tokens: true, options: { ...options, ...HELP } });
  } catch (error) {
    io.stderr(`${terminalLine(`warden ${command}: ${describeParseError(error, Object.keys(options))}`)}\n${usage}\n`);
    return EXIT.usage;
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout(`${usage}\n`);
    return EXIT.ok;
  }
  const problem = optionValueProblem(parsed.tokens ?? [], options);
  if (problem !== undefined) {
    io.stderr(`${terminalLine(`warden ${command}: ${problem}`)}\n${usage}\n`);
    return EXIT.usage;
  }
  const tokens = (parsed.tokens ?? []).map((t) =>
    t.kind === 'option' ? { kind: 'option' as const, name: t.name, ...(t.value === undefined ? {} : { value: t.value }) } : t.kind === 'positional' ? { kind: 'positional' as const, value: t.value } : { kind: 'option-terminator' as const },
  );
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals, tokens };
}

/**
 * When `workflowId` (as the user gave it, an argument or an option's value) can name no workflow
 * (client/workflow-id.ts `workflowIdProblem`: empty, over 1,000 characters, a control
 * character), prints why and the usage and returns the usage exit code; else undefined. For a
 * command that reads an existing task: a sub-agent's id (`<parent>/<sub-agent>-<step>`) passes.
 */
export function workflowIdUsageError(command: string, usage: string, io: CliIo, workflowId: string | undefined): number | undefined {
  const problem = workflowId === undefined ? undefined : workflowIdProblem(workflowId);
  return problem === undefined ? undefined : usageError(command, usage, io, `ERR_WORKFLOW_ID_INVALID: ${problem}`);
}

/**
 * As {@link workflowIdUsageError}, for a command that starts a new task under `workflowId`: also
 * refused when it holds a separator of the ids Warden derives from a task's (client/workflow-id.ts
 * `newWorkflowIdProblem`: `/`, `#`), naming the id and why.
 */
export function newWorkflowIdUsageError(command: string, usage: string, io: CliIo, workflowId: string | undefined): number | undefined {
  const problem = workflowId === undefined ? undefined : newWorkflowIdProblem(workflowId);
  return problem === undefined ? undefined : usageError(command, usage, io, `ERR_WORKFLOW_ID_INVALID: ${problem}`);
}

/**
 * What a sub-command given arguments it does not take says, in every command: `rotate takes no
 * argument (got "extra")`, `add takes one argument (got "x extra")`. `keys rotate extra` said
 * "expected jwks, list or rotate", naming a sub-command that was given.
 */
export function argumentCountText(action: string, takes: 0 | 1, given: readonly string[]): string {
  return `${action} takes ${takes === 0 ? 'no argument' : 'one argument'} (got "${given.join(' ')}")`;
}

/** Prints `message` and the usage to stderr; returns the usage exit code. */
export function usageError(command: string, usage: string, io: CliIo, message: string): number {
  // The message may quote an argument, or a configuration error over lines (run.ts): each line made safe.
  io.stderr(`${terminalLines(`warden ${command}: ${message}`)}\n${usage}\n`);
  return EXIT.usage;
}
