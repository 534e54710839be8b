/**
 * A real zombie for the tests of "does the process that holds X still run": a process that has
 * ended but whose parent has not reaped it, so its pid still answers kill(pid, 0) and its
 * /proc/<pid>/stat (state Z) keeps its start time. Node reaps its own children at once, so the
 * zombie is a grandchild: `sh` starts `sleep` in the background and then execs into a second
 * `sleep`, which never waits for children; the first `sleep` is then SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readProcStat } from '../../process-stat';

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
  process.kill(pid, 'SIGKILL');
  for (let i = 0; readProcStat(pid)?.state !== 'Z'; i++) {
    if (i > 500) throw new Error(`process ${pid} did not become a zombie`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { pid, startTime, close: () => parent.kill('SIGKILL') };
}
