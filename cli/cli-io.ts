import { terminalWriter } from '../terminal-text';

/** What a CLI command may touch of its process: output streams and environment. Tests pass their own. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/**
 * The process's own streams. On a terminal every control but `\n` and `\t` is escaped
 * (../terminal-text.ts, terminalWriter): a view that forgot to escape others' text prints no
 * escape sequence. Piped, output is written byte for byte.
 */
export const processIo: CliIo = {
  stdout: terminalWriter(process.stdout),
  stderr: terminalWriter(process.stderr),
  env: process.env,
};
