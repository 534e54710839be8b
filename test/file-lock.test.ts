/**
 * file-lock.ts, the one lock file of Warden (the keystore's `.lock`, the Temporal CLI build lock,
 * the embedded server's `start.lock`): a lock whose holder no longer runs is taken over at once (the
 * holder gone, a zombie, its pid now another process's or a thread's id), in every record format an
 * older Warden wrote; a running holder's lock is waited for however old; takers of one stale lock
 * never both get it. Real processes, real files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownProcessStartTime, readProcStat } from '../process-stat';
import { acquireFileLock } from '../file-lock';
import { makeZombie, startThreadedProcess, type Zombie } from './support/zombie-process';

const dir = mkdtempSync(join(tmpdir(), 'warden-file-lock-'));
let live: ChildProcess;
let zombie: Zombie;
/** A thread of `live`'s sibling node process, not its main one: its id is no process's pid. */
let threaded: ChildProcess;
let thread: number;
beforeAll(async () => {
  live = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((resolve) => live.once('spawn', resolve));
  zombie = await makeZombie();
  ({ process: threaded, thread } = await startThreadedProcess());
});
afterAll(() => {
  live.kill('SIGKILL');
  threaded.kill('SIGKILL');
  zombie.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The temporal-cli.ts record (JSON, `startTime` absent before start times were kept). */
const jsonRecord = (pid: number, startTime?: string) => JSON.stringify({ pid, ...(startTime === undefined ? {} : { startTime }), token: 'theirs', createdAt: new Date().toISOString() });
/** The keystore's record: `<pid>:<start time>:<token>`, earlier `<pid>:<token>`. */
const textRecord = (pid: number, startTime?: string) => (startTime === undefined ? `${pid}:theirs` : `${pid}:${startTime}:theirs`);
const later = (startTime: string) => String(BigInt(startTime) + 1n);
const startOf = (pid: number) => readProcStat(pid)!.startTime;
const dead = () => spawnSync('true').pid!;
const MINUTES_AGO = (Date.now() - 5 * 60_000) / 1000;
class LockTimeout extends Error {}

type Row = [label: string, text: () => string, held: boolean, ageSeconds?: number];
const rows: Row[] = [];
for (const [format, record] of [['JSON', jsonRecord], ['text', textRecord]] as const) {
  rows.push(
    [`${format}: a holder that ended and was reaped`, () => record(dead(), undefined), false],
    [`${format}: a holder that ended, with its start time`, () => record(dead(), '12345'), false],
    [`${format}: a holder killed and not yet reaped (a zombie)`, () => record(zombie.pid, zombie.startTime), false],
    [`${format}: a holder whose pid now names another, live process`, () => record(live.pid!, later(startOf(live.pid!))), false],
    [`${format}: a holder whose pid is now a thread's id`, () => record(thread, undefined), false],
    [`${format}: a running holder, its pid and start time`, () => record(live.pid!, startOf(live.pid!)), true],
    [`${format}: a running holder of a lock written before start times were kept`, () => record(live.pid!), true],
    [`${format}: a running holder that knows no start time ('unknown')`, () => record(live.pid!, 'unknown'), true],
    // The keystore used to clear any lock older than 60 s, its holder running or not.
    [`${format}: a running holder, its lock minutes old`, () => record(live.pid!, startOf(live.pid!)), true, MINUTES_AGO],
  );
}
rows.push(
  ['a record being written (empty, just created)', () => '', true],
  ['a corrupt record, just written', () => '{"pid": "not a number"', true],
  ['a corrupt record, minutes old', () => 'garbage', false, MINUTES_AGO],
);

describe('acquireFileLock', () => {
  it.each(rows)('%s', async (_label, text, held, mtime) => {
    const file = join(dir, `${Math.random()}.lock`);
    const before = text();
    writeFileSync(file, before);
    if (mtime !== undefined) utimesSync(file, mtime, mtime);
    const taking = acquireFileLock(file, { timeoutMs: 400, pollMs: 50, timeoutError: () => new LockTimeout() });
    if (held) {
      await expect(taking).rejects.toBeInstanceOf(LockTimeout);
      expect(readFileSync(file, 'utf8')).toBe(before);
      return;
    }
    const release = await taking;
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ v: 1, pid: process.pid, startTime: ownProcessStartTime() });
    await release();
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(dir).filter((entry) => entry.startsWith(basename(file)))).toEqual([]);
  });
});

describe('a lock this process holds', () => {
  it('is read as held by a second taker (its own start time matches what it wrote)', async () => {
    const file = join(dir, 'own.lock');
    const release = await acquireFileLock(file, { timeoutMs: 5_000, timeoutError: () => new LockTimeout() });
    await expect(acquireFileLock(file, { timeoutMs: 300, pollMs: 50, timeoutError: () => new LockTimeout() })).rejects.toBeInstanceOf(LockTimeout);
    await release();
    await (await acquireFileLock(file, { timeoutMs: 300, timeoutError: () => new LockTimeout() }))();
  });
});

// Every hand-over here is a takeover of a stale lock: each taker dies holding it (as after a crash),
// so the others race to clear the same dead holder's record at once. Before, the keystore moved
// the record aside and put back one it should not have taken, and the CLI lock re-read it and then
// unlinked whatever was there by then: a second taker could remove the first one's fresh lock and
// both held it. LOCK_MODULE lets the same children run an older implementation.
describe('takers racing for a stale lock (real processes)', () => {
  it('never both get it', { timeout: 60_000 }, async () => {
    const race = mkdtempSync(join(dir, 'race-'));
    const file = join(race, 'held.lock');
    const script = join(race, 'taker.ts');
    const module = process.env.LOCK_MODULE ?? join(__dirname, '..', 'file-lock');
    writeFileSync(
      script,
      `import { existsSync, openSync, unlinkSync, closeSync } from 'node:fs';\n` +
        `import { acquireFileLock } from ${JSON.stringify(module)};\n` +
        `const [file, inside, go] = process.argv.slice(2) as [string, string, string];\n` +
        `const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));\n` +
        `(async () => {\n` +
        `  while (!existsSync(go)) await sleep(1);\n` +
        `  await acquireFileLock(file, { timeoutMs: 30_000, pollMs: 1, timeoutError: () => new Error('lock timeout') });\n` +
        `  try { closeSync(openSync(inside, 'wx')); } catch { process.stdout.write('OVERLAP\\n'); }\n` +
        `  process.stdout.write('in\\n');\n` +
        `  await sleep(30);\n` +
        `  try { unlinkSync(inside); } catch {}\n` +
        `  process.exit(0); // dies holding the lock\n` +
        `})();\n`,
    );
    writeFileSync(file, jsonRecord(dead()));
    const inside = join(race, 'inside');
    const go = join(race, 'go');
    const takers = Array.from({ length: 10 }, () =>
      spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), script, file, inside, go], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    const outputs = takers.map(
      (taker) =>
        new Promise<string>((resolve) => {
          let out = '';
          taker.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
          taker.once('exit', () => resolve(out));
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500)); // every child loaded and polling for `go`
    writeFileSync(go, '');
    const said = (await Promise.all(outputs)).join('');
    expect(said.split('\n').filter((line) => line === 'OVERLAP')).toEqual([]);
    expect(said.split('\n').filter((line) => line === 'in')).toHaveLength(takers.length);
  });
});

// A holder that cannot read /proc (another platform; here a real process in a mount namespace
// whose /proc is an empty tmpfs) has no start time to record (ownProcessStartTime). Its lock must
// still hold while it runs: the first version wrote 'unknown', which no start time ever matched,
// so every other process took the lock over at once, and two held it together.
const canHideProc = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
describe.skipIf(!canHideProc)('a running holder without /proc', () => {
  it('keeps its lock', async () => {
    const file = join(dir, 'no-proc.lock');
    const script = join(dir, 'hold-lock.ts');
    const repo = join(__dirname, '..');
    writeFileSync(
      script,
      `import { acquireFileLock } from ${JSON.stringify(join(repo, 'file-lock'))};\n` +
        `import { ownProcessStartTime } from ${JSON.stringify(join(repo, 'process-stat'))};\n` +
        `acquireFileLock(process.argv[2]!, { timeoutMs: 5_000, timeoutError: () => new Error('lock timeout') }).then(() => {\n` +
        `  process.stdout.write(\`held \${ownProcessStartTime()}\\n\`);\n` +
        `  setInterval(() => {}, 60_000);\n` +
        `});\n`,
    );
    // exec keeps the shell's pid: the holder's pid is the child's.
    const holder = spawn('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /proc && exec "$0" --require "$1" "$2" "$3"`, process.execPath, require.resolve('tsx/cjs'), script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const said = await new Promise<string>((resolve, reject) => {
        let out = '';
        holder.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        holder.once('exit', (code) => reject(new Error(`the holder exited (${code})`)));
      });
      expect(said).toBe('held undefined');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(expect.objectContaining({ pid: holder.pid }));
      expect(JSON.parse(readFileSync(file, 'utf8'))).not.toHaveProperty('startTime');
      await expect(acquireFileLock(file, { timeoutMs: 600, pollMs: 50, timeoutError: () => new LockTimeout() })).rejects.toBeInstanceOf(LockTimeout);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: holder.pid });
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
