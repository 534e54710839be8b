/**
 * A command run with its stdout and stderr each on a real pseudo-terminal (python3's pty module),
 * in raw mode so the terminal driver adds nothing (no `\r` before `\n`): what the command wrote to
 * a terminal, byte for byte, beside its exit code. For test/cli/tty-output.test.ts.
 */
import { execFile } from 'node:child_process';

/** Opens two ptys (raw), runs argv with stdin empty and stdout/stderr on them, reads both until the child and every holder closed them. */
const PTY_RUNNER = `
import base64, json, os, pty, select, subprocess, sys, tty
argv = json.loads(sys.argv[1])
ptys = [pty.openpty() for _ in range(2)]
for _, slave in ptys: tty.setraw(slave)
child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=ptys[0][1], stderr=ptys[1][1], close_fds=True)
for _, slave in ptys: os.close(slave)
out = {ptys[0][0]: b'', ptys[1][0]: b''}
reading = set(out)
while reading:
    ready, _, _ = select.select(list(reading), [], [])
    for fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if data:
            out[fd] += data
        else:
            reading.discard(fd)
code = child.wait()
print(json.dumps({'code': code, 'stdout': base64.b64encode(out[ptys[0][0]]).decode(), 'stderr': base64.b64encode(out[ptys[1][0]]).decode()}))
`;

export interface TerminalRun {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs `argv` (program first) with `env`, its stdout and stderr on pseudo-terminals (isTTY true in the child). */
export function runInTerminal(argv: string[], env: NodeJS.ProcessEnv): Promise<TerminalRun> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', PTY_RUNNER, JSON.stringify(argv)], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) return reject(new Error(`pty runner failed: ${error.message}\n${stderr}`));
      const result = JSON.parse(stdout) as { code: number; stdout: string; stderr: string };
      resolve({ code: result.code, stdout: Buffer.from(result.stdout, 'base64'), stderr: Buffer.from(result.stderr, 'base64') });
    });
  });
}

/** Runs `argv` with `env`, stdout and stderr on pipes: what a script reading the command gets. */
export function runPiped(argv: string[], env: NodeJS.ProcessEnv): Promise<TerminalRun> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
