/**
 * A real zombie for the tests of "does the process that holds X still run": a process that has
 * ended but whose parent has not reaped it, so its pid still answers kill(pid, 0) and its
 * /proc/<pid>/stat (state Z) keeps its start time. Node reaps its own children at once, so the
 * zombie is a grandchild: `sh` starts `sleep` in the background and then execs into a second
 * `sleep`, which never waits for children; the first `sleep` is then SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readProcStat } from '../../process-stat';
import { readdirSync } from 'node:fs';

export interface Zombie {
  /** The zombie's pid. */
  pid: number;
  /** Its start time (/proc/<pid>/stat field 22), as a record of it would hold. */
  startTime: string;
  /** Ends the parent, so init reaps the zombie. */
  close(): void;
}

/** Makes a zombie; resolves once /proc says its state is Z. */
export async function makeZombie(): Promise<Zombie> {
  const parent: ChildProcess = spawn('sh', ['-c', 'sleep 600 & echo $!; exec sleep 601'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    parent.once('error', reject);
    parent.once('exit', () => reject(new Error('the zombie\'s parent exited early')));
  });
  const startTime = readProcStat(pid)?.startTime;
  if (startTime === undefined) throw new Error(`no /proc/${pid}/stat for the zombie-to-be`);
  // Until `sh` has exec'd into `sleep`, the shell itself may reap its child: wait for the exec.
  await until(() => readProcStat(parent.pid!)?.comm === 'sleep', `the zombie's parent ${parent.pid} did not exec into sleep`);
  process.kill(pid, 'SIGKILL');
  await until(() => readProcStat(pid)?.state === 'Z', `process ${pid} did not become a zombie`);
  return { pid, startTime, close: () => parent.kill('SIGKILL') };
}

/** Polls `condition` every 10 ms, up to 60 s (a loaded machine). */
async function until(condition: () => boolean, failure: string): Promise<void> {
  for (const start = Date.now(); !condition(); ) {
    if (Date.now() - start > 60_000) throw new Error(failure);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A live Node process with more than one thread, and the id of a thread that is not its main one (a thread id is not a process). */
export async function startThreadedProcess(): Promise<{ process: ChildProcess; thread: number }> {
  const threaded = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], { stdio: 'ignore' });
  await new Promise((resolve) => threaded.once('spawn', resolve));
  for (let i = 0; ; i += 1) {
    const other = readdirSync(`/proc/${threaded.pid}/task`).map(Number).find((id) => id !== threaded.pid);
    if (other !== undefined) return { process: threaded, thread: other };
    if (i > 200) {
      threaded.kill('SIGKILL');
      throw new Error('no thread besides the main one');
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
