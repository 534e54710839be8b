/**
 * The argument handling every sub-command shares: unknown or malformed options print the error
 * and the usage (exit 2), `--help` prints the usage (exit 0); anything else is the parsed result.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CliIo } from './cli-io';
import { EXIT } from './exit-codes';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Parsed arguments, or the exit code when the command is already answered (bad usage, --help). */
export function parseCommandArgs<const O extends Options>(command: string, usage: string, argv: string[], io: CliIo, options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...options, ...HELP } as O & typeof HELP });
  } catch (error) {
    io.stderr(`warden ${command}: ${(error as Error).message}\n${usage}\n`);
    return EXIT.usage;
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout(`${usage}\n`);
    return EXIT.ok;
  }
  return parsed;
}
