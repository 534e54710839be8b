/**
 * acquireFileLock (temporal/temporal-cli.ts), the lock around building the Temporal CLI and
 * starting the embedded server: a lock whose holder no longer runs is taken over at once (the
 * holder gone, a zombie, or its pid now another process's, told by the start time the lock
 * records); a running holder's lock is waited for. Real processes, real files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownProcessStartTime, readProcStat } from '../../process-stat';
import { acquireFileLock } from '../../temporal/temporal-cli';
import { makeZombie, type Zombie } from '../support/zombie-process';

const dir = mkdtempSync(join(tmpdir(), 'warden-file-lock-'));
let live: ChildProcess;
let zombie: Zombie;
beforeAll(async () => {
  live = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((resolve) => live.once('spawn', resolve));
  zombie = await makeZombie();
});
afterAll(() => {
  live.kill('SIGKILL');
  zombie.close();
  rmSync(dir, { recursive: true, force: true });
});

const lockText = (pid: number, startTime?: string) => JSON.stringify({ pid, ...(startTime === undefined ? {} : { startTime }), token: 'theirs', createdAt: new Date().toISOString() });
const later = (startTime: string) => String(BigInt(startTime) + 1n);
class LockTimeout extends Error {}

describe('acquireFileLock', () => {
  it.each([
    ['a holder that ended and was reaped', () => lockText(spawnSync('true').pid!), false],
    ['a holder killed and not yet reaped (a zombie)', () => lockText(zombie.pid, zombie.startTime), false],
    ['a holder whose pid now names another, live process', () => lockText(live.pid!, later(readProcStat(live.pid!)!.startTime)), false],
    ['a running holder, its pid and start time', () => lockText(live.pid!, readProcStat(live.pid!)!.startTime), true],
    ['a running holder of a lock written before start times were kept', () => lockText(live.pid!), true],
  ] as const)('%s', async (_label, text, held) => {
    const file = join(dir, `${Math.random()}.lock`);
    writeFileSync(file, text());
    const taking = acquireFileLock(file, { timeoutMs: 400, pollMs: 50, timeoutError: () => new LockTimeout() });
    if (held) {
      await expect(taking).rejects.toBeInstanceOf(LockTimeout);
      expect(JSON.parse(readFileSync(file, 'utf8')).token).toBe('theirs');
      return;
    }
    const release = await taking;
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, startTime: ownProcessStartTime() });
    await release();
    expect(existsSync(file)).toBe(false);
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

// A holder that cannot read /proc (another platform; here a real process in a mount namespace
// whose /proc is an empty tmpfs) has no start time to record (ownProcessStartTime). Its lock must
// still hold while it runs: the first version wrote 'unknown', which no start time ever matched,
// so every other process took the lock over at once, and two held it together.
const canHideProc = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
describe.skipIf(!canHideProc)('a running holder without /proc', () => {
  it('keeps its lock', async () => {
    const file = join(dir, 'no-proc.lock');
    const script = join(dir, 'hold-lock.ts');
    const repo = join(__dirname, '..', '..');
    writeFileSync(
      script,
      `import { acquireFileLock } from ${JSON.stringify(join(repo, 'temporal', 'temporal-cli'))};\n` +
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
