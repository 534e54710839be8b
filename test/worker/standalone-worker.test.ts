/**
 * Which pollers `warden run` treats as a standalone worker it may hand its task to. A poller's
 * identity is only its own claim (anyone who reaches the server can poll under any identity): a
 * poller is reused only when its identity names a worker record in the state folder that only
 * this user can have written (`standalone-workers/<nonce>.json`, 0600, in a private folder), the
 * identity's pid is the record's, and that process is alive, this user's and started at the
 * recorded time (/proc/<pid>/stat field 22). Every other poller, including `warden run`'s own
 * in-process workers (the SDK's `<pid>@<host>`), is never reused, and run is told why.
 * Real files and real processes; the end-to-end attack through Temporal is
 * test/attacks/run-reuses-forged-standalone-worker.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkStandaloneWorker,
  liveStandaloneWorker,
  recordRunWorker,
  runWorkerIdentity,
  unvouchedPollers,
  otherStateWorkers,
  parseStandaloneWorkerIdentity,
  possiblyOpenPollNote,
  possiblyOpenPolls,
  processStartTime,
  RUN_RECORD_KEEP_MS,
  RUN_RECORDS_DIR,
  SERVER_LONG_POLL_WINDOW_MS,
  standaloneWorkerIdentity,
  stateDirFingerprint,
  STANDALONE_RECORDS_DIR,
  writeStandaloneWorkerRecord,
  type Poller,
} from '../../worker/standalone-worker';
import { makeZombie, type Zombie } from '../support/zombie-process';

/** `identity` as the server lists it, last seen polling `ago` ms ago (before any record these rows write ended). */
const polled = (identity: string, ago = 5_000): Poller => ({ identity, lastPolledAt: Date.now() - ago });

const isRoot = process.getuid?.() === 0;
/** The pid of a process that has exited (and, right after, is not reused). */
const deadPid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
let sleeper: ChildProcess;
let foreignSleeper: ChildProcess | undefined;
/** A worker SIGKILLed whose parent has not reaped it: its pid and start time still read, it polls nothing. */
let zombie: Zombie;

beforeAll(async () => {
  zombie = await makeZombie();
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  // A live process of another user (nobody), for the "owned by another user" case.
  if (isRoot) foreignSleeper = spawn('sleep', ['600'], { stdio: 'ignore', uid: 65534, gid: 65534 });
});
afterAll(() => {
  zombie.close();
  sleeper.kill('SIGKILL');
  foreignSleeper?.kill('SIGKILL');
});

/** A fresh state folder (0700) holding this process's genuine worker record. */
function stateWithRecord(): { stateDir: string; nonce: string; file: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-standalone-'));
  const { nonce, file } = writeStandaloneWorkerRecord(stateDir);
  return { stateDir, nonce, file };
}

/** Writes a record by hand in `stateDir`'s records folder; returns its nonce. `ageMs`: how long ago its worker was last known alive. */
function plant(stateDir: string, record: Record<string, unknown>, mode = 0o600, ageMs = 0): string {
  const nonce = (record.nonce as string | undefined) ?? randomBytes(16).toString('hex');
  const file = join(stateDir, STANDALONE_RECORDS_DIR, `${nonce}.json`);
  writeFileSync(file, JSON.stringify({ ...record, nonce }), { mode });
  chmodSync(file, mode);
  const at = new Date(Date.now() - ageMs);
  utimesSync(file, at, at);
  return nonce;
}

/** Past the window in which an ended worker's record still vouches for it. */
const EXPIRED = RUN_RECORD_KEEP_MS + 1_000;

interface Case {
  name: string;
  /** Builds the state folder and the poller identity to check. */
  setup: () => { stateDir: string; identity: string };
  /** undefined: reused; else a fragment of the reason given. */
  refused: string | undefined;
  /** This folder's own worker, ended within the server's poller window: not reused, and not reported as refused either. */
  ended?: true;
  rootOnly?: boolean;
}

const cases: Case[] = [
  { name: 'the genuine worker (this process, its record)', setup: () => { const s = stateWithRecord(); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce) }; }, refused: undefined },
  {
    name: 'the genuine worker, the folder named through a symbolic link',
    setup: () => {
      const s = stateWithRecord();
      const link = join(mkdtempSync(join(tmpdir(), 'warden-standalone-link-')), 'state');
      symlinkSync(s.stateDir, link);
      return { stateDir: link, identity: standaloneWorkerIdentity(link, s.nonce) };
    },
    refused: undefined,
  },
  {
    name: 'forged identity with the right folder digest and no nonce (pid 1, the original attack)',
    setup: () => { const s = stateWithRecord(); return { stateDir: s.stateDir, identity: `warden-worker/1@${hostname()}/state-${stateDirFingerprint(s.stateDir)}` }; },
    refused: 'names no worker record',
  },
  {
    name: 'forged identity with the right digest and a made-up nonce (record missing)',
    setup: () => { const s = stateWithRecord(); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, randomBytes(16).toString('hex'), 1) }; },
    refused: 'no worker record',
  },
  {
    name: 'the right nonce but another pid (pid 1)',
    setup: () => { const s = stateWithRecord(); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce, 1) }; },
    refused: 'is not the recorded worker',
  },
  {
    name: 'the right nonce but another live pid of this user',
    setup: () => { const s = stateWithRecord(); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce, sleeper.pid) }; },
    refused: 'is not the recorded worker',
  },
  {
    name: 'a record whose process has exited, past the poller window (stale pid)',
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: deadPid, startTime: '12345' }, 0o600, EXPIRED); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, deadPid) }; },
    refused: 'is not running',
  },
  {
    name: 'a worker of this folder that ended within the poller window (Ctrl-C: its record kept, marked ended)',
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: deadPid, startTime: '12345' }); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, deadPid) }; },
    refused: 'is not running',
    ended: true,
  },
  {
    name: "an ended worker's recent record under another dead pid",
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: deadPid, startTime: '12345' }); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, 4_000_000) }; },
    refused: 'is not the recorded worker',
  },
  {
    name: "an ended worker's recent record, the records folder opened to others (0755)",
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: deadPid, startTime: '12345' }); chmodSync(join(s.stateDir, STANDALONE_RECORDS_DIR), 0o755); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, deadPid) }; },
    refused: 'is open to others (mode 755)',
  },
  {
    name: "an ended worker's recent record open to others (0644)",
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: deadPid, startTime: '12345' }, 0o644); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, deadPid) }; },
    refused: 'is open to others (mode 644)',
  },
  {
    name: 'a record whose pid now names another process (start time differs), past the poller window',
    setup: () => {
      const s = stateWithRecord();
      const actual = BigInt(processStartTime(sleeper.pid!)!);
      const nonce = plant(s.stateDir, { pid: sleeper.pid, startTime: String(actual + 1n) }, 0o600, EXPIRED);
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, sleeper.pid) };
    },
    refused: 'not at the recorded',
  },
  {
    name: 'a worker of this folder that ended within the poller window, its pid since reused',
    setup: () => {
      const s = stateWithRecord();
      const actual = BigInt(processStartTime(sleeper.pid!)!);
      const nonce = plant(s.stateDir, { pid: sleeper.pid, startTime: String(actual + 1n) });
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, sleeper.pid) };
    },
    refused: 'not at the recorded',
    ended: true,
  },
  {
    name: 'a worker killed and not yet reaped by its parent (a zombie, its true start time), past the poller window',
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: zombie.pid, startTime: zombie.startTime }, 0o600, EXPIRED); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, zombie.pid) }; },
    refused: 'has ended (a zombie',
  },
  {
    name: 'a worker of this folder killed within the poller window, not yet reaped (a zombie)',
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: zombie.pid, startTime: zombie.startTime }); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, zombie.pid) }; },
    refused: 'has ended (a zombie',
    ended: true,
  },
  {
    name: 'a record of a live process with its true start time, but opened to others (0644)',
    setup: () => { const s = stateWithRecord(); const nonce = plant(s.stateDir, { pid: sleeper.pid, startTime: processStartTime(sleeper.pid!) }, 0o644); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, sleeper.pid) }; },
    refused: 'is open to others (mode 644)',
  },
  {
    name: 'a record of another user (otherwise right)',
    rootOnly: true,
    setup: () => {
      const s = stateWithRecord();
      chownSync(s.file, 65534, 65534);
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce) };
    },
    refused: 'belongs to uid 65534',
  },
  {
    name: "a record naming another user's live process with its true start time",
    rootOnly: true,
    setup: () => {
      const s = stateWithRecord();
      const nonce = plant(s.stateDir, { pid: foreignSleeper!.pid, startTime: processStartTime(foreignSleeper!.pid!) });
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce, foreignSleeper!.pid) };
    },
    refused: 'belongs to uid 65534, not this user',
  },
  {
    name: 'a record that is a symbolic link to the genuine one',
    setup: () => {
      const s = stateWithRecord();
      const nonce = randomBytes(16).toString('hex');
      symlinkSync(s.file, join(s.stateDir, STANDALONE_RECORDS_DIR, `${nonce}.json`));
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce) };
    },
    refused: 'cannot open the worker record',
  },
  {
    name: "a record whose nonce field is not its file's",
    setup: () => {
      const s = stateWithRecord();
      const nonce = randomBytes(16).toString('hex');
      writeFileSync(join(s.stateDir, STANDALONE_RECORDS_DIR, `${nonce}.json`), readFileSync(s.file), { mode: 0o600 });
      return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, nonce) };
    },
    refused: 'is malformed',
  },
  {
    name: 'the records folder opened to others (0755)',
    setup: () => { const s = stateWithRecord(); chmodSync(join(s.stateDir, STANDALONE_RECORDS_DIR), 0o755); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce) }; },
    refused: 'is open to others (mode 755)',
  },
  {
    name: 'the state folder writable by others (0777)',
    setup: () => { const s = stateWithRecord(); chmodSync(s.stateDir, 0o777); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce) }; },
    refused: 'is open to others (mode 777)',
  },
  {
    name: 'the records folder of another user',
    rootOnly: true,
    setup: () => { const s = stateWithRecord(); chownSync(join(s.stateDir, STANDALONE_RECORDS_DIR), 65534, 65534); return { stateDir: s.stateDir, identity: standaloneWorkerIdentity(s.stateDir, s.nonce) }; },
    refused: 'belongs to uid 65534',
  },
];

describe('checkStandaloneWorker: the record vouches, never the identity', () => {
  it.each(cases.filter((c) => !c.rootOnly || isRoot).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { stateDir, identity } = c.setup();
    const reason = checkStandaloneWorker(identity, stateDir);
    if (c.refused === undefined) {
      expect(reason).toBeUndefined();
      expect(liveStandaloneWorker([polled(identity)], stateDir)).toEqual({ worker: identity, refused: [] });
    } else if (c.ended === true) {
      expect(reason).toContain(c.refused);
      expect(liveStandaloneWorker([polled(identity)], stateDir)).toEqual({ worker: undefined, refused: [] });
      expect(unvouchedPollers([polled(identity)], stateDir)).toEqual([]);
    } else {
      expect(reason).toContain(c.refused);
      expect(liveStandaloneWorker([polled(identity)], stateDir)).toEqual({ worker: undefined, refused: [{ identity, reason }] });
    }
  });

  it('pollers that do not claim this folder on this machine are neither reused nor reported', () => {
    const s = stateWithRecord();
    const other = stateWithRecord();
    const pollers = [
      `${process.pid}@${hostname()}`, // warden run's own in-process worker (the SDK's identity)
      standaloneWorkerIdentity(other.stateDir, other.nonce), // another state folder
      standaloneWorkerIdentity(s.stateDir, s.nonce, process.pid, `not-${hostname()}`), // another machine
      `${standaloneWorkerIdentity(s.stateDir, s.nonce)}x`, // a forged suffix
    ];
    expect(liveStandaloneWorker(pollers.map((identity) => polled(identity)), s.stateDir)).toEqual({ worker: undefined, refused: [] });
  });

  it('picks the genuine one after a forged one, and reports the forged one', () => {
    const s = stateWithRecord();
    const forged = `warden-worker/1@${hostname()}/state-${stateDirFingerprint(s.stateDir)}`;
    const mine = standaloneWorkerIdentity(s.stateDir, s.nonce);
    const found = liveStandaloneWorker([polled(forged), polled(mine)], s.stateDir);
    expect(found.worker).toBe(mine);
    expect(found.refused.map((r) => r.identity)).toEqual([forged]);
  });

  it('reports a forged one listed after the genuine one too (it still polls the queue)', () => {
    const s = stateWithRecord();
    const forged = `warden-worker/1@${hostname()}/state-${stateDirFingerprint(s.stateDir)}/${'0'.repeat(32)}`;
    const mine = standaloneWorkerIdentity(s.stateDir, s.nonce);
    const found = liveStandaloneWorker([polled(mine), polled(forged)], s.stateDir);
    expect(found.worker).toBe(mine);
    expect(found.refused.map((r) => r.identity)).toEqual([forged]);
  });
});

describe('unvouchedPollers: every poller no other note of warden run names, but its own', () => {
  const s = stateWithRecord();
  const other = stateWithRecord();
  const own = runWorkerIdentity();
  it.each<[string, string, boolean]>([
    ["the SDK's default identity", '4242@somewhere', true],
    ["this process's SDK identity (a claim: this run's worker polls under its nonce identity)", `${process.pid}@${hostname()}`, true],
    ['another run\'s worker', runWorkerIdentity(), true],
    ['a live run worker on this machine, another nonce (not this run)', runWorkerIdentity(process.pid), true],
    ['an ended run\'s worker on another machine (its process cannot be checked)', runWorkerIdentity(deadPid, `not-${hostname()}`), true],
    ['an ended run\'s worker with a malformed nonce', runWorkerIdentity(deadPid).slice(0, -1), true],
    ['an ended run\'s worker on this machine that no run of this folder recorded (test/attacks/poller-hides-as-ended-run-worker.test.ts)', runWorkerIdentity(deadPid), true],
    ['a forged copy of this run\'s identity with another nonce', `${own.slice(0, -1)}${own.endsWith('0') ? '1' : '0'}`, true],
    ['a standalone worker of this folder on another machine', standaloneWorkerIdentity(s.stateDir, s.nonce, 4242, `not-${hostname()}`), true],
    ['a standalone identity with a forged suffix', `${standaloneWorkerIdentity(s.stateDir, s.nonce)}x`, true],
    ['empty', '', true],
    ['this run\'s own worker', own, false],
    ['the genuine standalone worker (vouched for)', standaloneWorkerIdentity(s.stateDir, s.nonce), false],
    ['a claimant of this folder on this machine (refused in its own note)', `warden-worker/1@${hostname()}/state-${stateDirFingerprint(s.stateDir)}`, false],
    ['a standalone worker of another state folder (named in its own note)', standaloneWorkerIdentity(other.stateDir, other.nonce), false],
  ])('%s', (_what, identity, noted) => {
    expect(unvouchedPollers([polled(identity)], s.stateDir, [own])).toEqual(noted ? [identity] : []);
  });

  it('the run worker identity is fresh each time and no standalone identity', () => {
    expect(runWorkerIdentity()).not.toBe(runWorkerIdentity());
    expect(runWorkerIdentity(1, 'h')).toMatch(/^warden-run\/1@h\/[0-9a-f]{32}$/);
    expect(parseStandaloneWorkerIdentity(runWorkerIdentity())).toBeUndefined();
  });
});

describe('the worker record', () => {
  it('is created exclusively, 0600 in a 0700 folder, holds pid, start time and nonce, and is kept on exit, its time the end', () => {
    const s = stateWithRecord();
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.stateDir, STANDALONE_RECORDS_DIR)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(s.file, 'utf8'))).toEqual({ pid: process.pid, startTime: processStartTime(process.pid), nonce: s.nonce });
    expect(readdirSync(join(s.stateDir, STANDALONE_RECORDS_DIR)).filter((name) => !name.endsWith('.json'))).toEqual([]);
    const again = writeStandaloneWorkerRecord(s.stateDir);
    expect(again.nonce).not.toBe(s.nonce);
    const past = new Date(Date.now() - 60_000);
    utimesSync(again.file, past, past);
    again.ended();
    expect(existsSync(again.file)).toBe(true);
    expect(Date.now() - statSync(again.file).mtimeMs).toBeLessThan(30_000);
    expect(existsSync(s.file)).toBe(true);
  });

  it.each<[string, (stateDir: string) => unknown]>([
    ['a new standalone worker', (stateDir) => writeStandaloneWorkerRecord(stateDir).ended()],
    ["a run's (or mcp serve's) worker", (stateDir) => recordRunWorker(stateDir, runWorkerIdentity()).ended()],
  ])('%s prunes the records of workers that ended past the poller window; recent ended ones and live ones stay', (_who, record) => {
    const s = stateWithRecord();
    const stale = plant(s.stateDir, { pid: deadPid, startTime: '1' }, 0o600, EXPIRED);
    const recent = plant(s.stateDir, { pid: deadPid, startTime: '1' });
    const liveButOld = plant(s.stateDir, { pid: sleeper.pid, startTime: processStartTime(sleeper.pid!) }, 0o600, EXPIRED);
    record(s.stateDir);
    const left = (nonce: string) => existsSync(join(s.stateDir, STANDALONE_RECORDS_DIR, `${nonce}.json`));
    expect([left(stale), left(recent), left(liveButOld), existsSync(s.file)]).toEqual([false, true, true, true]);
  });

  it("processStartTime reads field 22 past a process name holding spaces and ')'", async () => {
    // The child reads its start time while its name is plain, then renames itself 'a) b c'.
    const script = "const fs=require('fs');const before=fs.readFileSync('/proc/self/stat','utf8').split(' ')[21];fs.writeFileSync('/proc/self/comm','a) b c');process.stdout.write(before+' '+fs.readFileSync('/proc/self/stat','utf8').includes('(a) b c)')+'\\n');setInterval(()=>{},1000)";
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve) => child.stdout!.once('data', (data: Buffer) => resolve(data.toString().trim())));
      const [before, renamed] = line.split(' ');
      expect(renamed).toBe('true');
      expect(processStartTime(child.pid!)).toBe(before);
    } finally {
      child.kill('SIGKILL');
    }
    expect(processStartTime(deadPid)).toBeUndefined();
  });
});

describe('identities', () => {
  it('round-trip, and name the folder by a hash, not its path', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'warden-standalone-'));
    const nonce = randomBytes(16).toString('hex');
    const identity = standaloneWorkerIdentity(stateDir, nonce, 1234, 'host-a');
    expect(parseStandaloneWorkerIdentity(identity)).toEqual({ pid: 1234, host: 'host-a', stateFingerprint: stateDirFingerprint(stateDir), nonce });
    expect(identity).not.toContain(stateDir);
  });

  it('otherStateWorkers lists standalone workers of other folders only', () => {
    const s = stateWithRecord();
    const o = stateWithRecord();
    const other = standaloneWorkerIdentity(o.stateDir, o.nonce);
    expect(otherStateWorkers([standaloneWorkerIdentity(s.stateDir, s.nonce), other, `${process.pid}@${hostname()}`], s.stateDir)).toEqual([other]);
  });
});

/**
 * An ended worker's record vouches for its identity only up to the worker's end: the server's
 * `lastAccessTime` for the identity must be no later than the record's `endedAt` (written by
 * `ended()`), or, for a record whose end was never written (SIGKILL), its time plus one refresh
 * (30 s). A later poll is a stranger's under the copied identity (regression:
 * test/worker/copied-ended-worker-identity-named.test.ts). A record time ahead of now vouches for
 * nothing and is pruned.
 */
/** A record of the ended process `deadPid` in `folder` of a fresh private state folder, written by hand as `ended()` or a SIGKILL leaves it (times relative to `now`). */
function ended(folder: string, row: { at: number; endedAt?: number }, now: number): { stateDir: string; nonce: string; file: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-ended-'));
  mkdirSync(join(stateDir, folder), { mode: 0o700 });
  const nonce = randomBytes(16).toString('hex');
  const file = join(stateDir, folder, `${nonce}.json`);
  writeFileSync(file, JSON.stringify({ pid: deadPid, startTime: '12345', nonce, ...(row.endedAt === undefined ? {} : { endedAt: now + row.endedAt }) }), { mode: 0o600 });
  // In seconds, not a Date: a Date holds whole milliseconds.
  utimesSync(file, (now + row.at) / 1_000, (now + row.at) / 1_000);
  return { stateDir, nonce, file };
}

describe("an ended worker's record vouches only up to its end", () => {
  const SECOND = 1_000;
  /**
   * Record time (file mtime) `at`, end `endedAt` (undefined: never written), last poll `polledAt`,
   * all relative to now; then what the check says: the ended worker (skipped), a poll after its
   * end (named as a copied identity), or a record that vouches for nothing (named).
   */
  const rows: [string, { at: number; endedAt?: number; polledAt: number }, 'ended' | 'copied' | 'no record'][] = [
    ['clean end, last poll before it (the genuine worker)', { at: -60 * SECOND, endedAt: -60 * SECOND, polledAt: -61 * SECOND }, 'ended'],
    ['clean end, last poll at it', { at: -60 * SECOND, endedAt: -60 * SECOND, polledAt: -60 * SECOND }, 'ended'],
    ['clean end, polled 1 s after it (a copied identity)', { at: -60 * SECOND, endedAt: -60 * SECOND, polledAt: -59 * SECOND }, 'copied'],
    ['clean end, polled 50 s after it (no slack for a written end)', { at: -60 * SECOND, endedAt: -60 * SECOND, polledAt: -10 * SECOND }, 'copied'],
    ['killed (no end written), polled before its last refresh', { at: -60 * SECOND, polledAt: -61 * SECOND }, 'ended'],
    ['killed, polled 29 s after its last refresh (within one refresh)', { at: -60 * SECOND, polledAt: -31 * SECOND }, 'ended'],
    ['killed, polled 31 s after its last refresh (a copied identity)', { at: -60 * SECOND, polledAt: -29 * SECOND }, 'copied'],
    // File times carry nanoseconds, Date.now() whole milliseconds: a record written in the millisecond of the check reads ahead of it.
    ['record written in the millisecond of the check (file time 0.6 ms ahead of Date.now())', { at: 0.6, endedAt: 0, polledAt: -1 }, 'ended'],
    ['killed, record time 0.6 ms ahead of Date.now()', { at: 0.6, polledAt: -1 }, 'ended'],
    ['record time ahead of now (the clock stepped back)', { at: 60 * SECOND, polledAt: -5 * SECOND }, 'no record'],
    ['record time 2 s ahead of now', { at: 2 * SECOND, polledAt: -5 * SECOND }, 'no record'],
    ['end ahead of now', { at: -60 * SECOND, endedAt: 60 * SECOND, polledAt: -61 * SECOND }, 'no record'],
    ['record time past the window', { at: -RUN_RECORD_KEEP_MS - SECOND, endedAt: -RUN_RECORD_KEEP_MS - SECOND, polledAt: -RUN_RECORD_KEEP_MS - 2 * SECOND }, 'no record'],
  ];

  it.each(rows)('a standalone worker: %s (%s)', (_what, row, verdict) => {
    const now = Date.now();
    const { stateDir, nonce } = ended(STANDALONE_RECORDS_DIR, row, now);
    const identity = standaloneWorkerIdentity(stateDir, nonce, deadPid);
    const found = liveStandaloneWorker([{ identity, lastPolledAt: now + row.polledAt }], stateDir, hostname(), now);
    expect(found.worker).toBeUndefined();
    expect(found.refused.map((r) => r.identity)).toEqual(verdict === 'ended' ? [] : [identity]);
    if (verdict === 'copied') expect(found.refused[0]!.reason).toContain(`the server saw it poll at ${new Date(now + row.polledAt).toISOString()}, after this state folder's worker of that identity ended`);
    if (verdict === 'no record') expect(found.refused[0]!.reason).toContain(`process ${deadPid} is not running`);
  });

  it.each(rows)('a run or mcp serve worker: %s (%s)', (_what, row, verdict) => {
    const now = Date.now();
    const { stateDir, nonce } = ended(RUN_RECORDS_DIR, row, now);
    const identity = `warden-run/${deadPid}@${hostname()}/${nonce}`;
    expect(unvouchedPollers([{ identity, lastPolledAt: now + row.polledAt }], stateDir, [], hostname(), now)).toEqual(verdict === 'ended' ? [] : [identity]);
  });

  it.each([RUN_RECORDS_DIR, STANDALONE_RECORDS_DIR])('an ended worker\'s record in %s with a time ahead of now is pruned by the next record', (folder) => {
    const now = Date.now();
    const future = ended(folder, { at: 60 * SECOND }, now);
    const futureEnd = ended(folder, { at: -60 * SECOND, endedAt: 60 * SECOND }, now);
    const fresh = ended(folder, { at: -60 * SECOND, endedAt: -60 * SECOND }, now);
    const sameMillisecond = ended(folder, { at: 0.6, endedAt: 0 }, now);
    for (const s of [future, futureEnd, fresh, sameMillisecond]) {
      if (folder === RUN_RECORDS_DIR) recordRunWorker(s.stateDir, runWorkerIdentity()).ended();
      else writeStandaloneWorkerRecord(s.stateDir).ended();
    }
    expect([future, futureEnd, fresh, sameMillisecond].map((s) => existsSync(s.file))).toEqual([false, false, true, true]);
  });

  it('ended() writes the end into the record, whole and private', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'warden-ended-'));
    const before = Date.now();
    const registration = writeStandaloneWorkerRecord(stateDir);
    expect(JSON.parse(readFileSync(registration.file, 'utf8')).endedAt).toBeUndefined();
    registration.ended();
    const record = JSON.parse(readFileSync(registration.file, 'utf8')) as { endedAt: number; nonce: string };
    expect(record.nonce).toBe(registration.nonce);
    expect(record.endedAt).toBeGreaterThanOrEqual(before);
    expect(record.endedAt).toBeLessThanOrEqual(Date.now());
    expect(statSync(registration.file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(stateDir, STANDALONE_RECORDS_DIR))).toEqual([`${registration.nonce}.json`]);
    // Still this live process's record: reused, not refused.
    expect(checkStandaloneWorker(standaloneWorkerIdentity(stateDir, registration.nonce), stateDir)).toBeUndefined();
  });
});

describe("a poll that arrived before an ended worker's end may still be open: named, never vouched for", () => {
  const SECOND = 1_000;
  const WINDOW = SERVER_LONG_POLL_WINDOW_MS;
  /**
   * Record time (file mtime) `at`, end `endedAt` (undefined: killed, never written), the server's
   * last poll `polledAt` (when the latest poll ARRIVED), all relative to now; then what `warden run`
   * says: nothing (`vouched`: the poll is closed, by the end or by now), the open-poll note
   * (`open`: it arrived within one long-poll window before the end and less than one window ago),
   * or a copied identity (`copied`: it arrived after the end).
   */
  const rows: [string, { at: number; endedAt?: number; polledAt: number }, 'vouched' | 'open' | 'copied'][] = [
    ['clean end, poll arrived well before it (more than one window)', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -10 * SECOND - WINDOW - SECOND }, 'vouched'],
    ['clean end, poll arrived 1 s before it (inside the window: the finding)', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -11 * SECOND }, 'open'],
    ['clean end, poll arrived at it', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -10 * SECOND }, 'open'],
    ['clean end, poll arrived inside the window, 1 s less than one window ago', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -WINDOW + SECOND }, 'open'],
    ['clean end, poll arrived inside the window but more than one window ago (closed now)', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -WINDOW - SECOND }, 'vouched'],
    ['clean end, poll arrived after it (a copied identity)', { at: -10 * SECOND, endedAt: -10 * SECOND, polledAt: -5 * SECOND }, 'copied'],
    ['killed (no end), poll arrived well before its last refresh', { at: -20 * SECOND, polledAt: -20 * SECOND - WINDOW - SECOND }, 'vouched'],
    ['killed, poll arrived 5 s before its last refresh', { at: -20 * SECOND, polledAt: -25 * SECOND }, 'open'],
    ['killed, poll arrived 25 s after its last refresh (within one refresh: it may have lived)', { at: -60 * SECOND, polledAt: -35 * SECOND }, 'open'],
    ['killed, poll arrived 31 s after its last refresh (a copied identity)', { at: -60 * SECOND, polledAt: -29 * SECOND }, 'copied'],
  ];

  function expectNote(found: ReturnType<typeof possiblyOpenPolls>, identity: string, row: { at: number; endedAt?: number; polledAt: number }, now: number): void {
    // A killed worker's latest end is its record's file time (sub-millisecond) plus one refresh.
    expect(found).toEqual([{ identity, arrivedAt: now + row.polledAt, endedAt: expect.closeTo(row.endedAt === undefined ? now + row.at + 30 * SECOND : now + row.endedAt, -1), killed: row.endedAt === undefined }]);
    const end = found[0]!.endedAt;
    const seconds = Math.round((end - (now + row.polledAt)) / SECOND);
    expect(possiblyOpenPollNote(found[0]!)).toBe(
      row.endedAt === undefined
        ? `poller ${identity}: this state folder's worker of that identity was killed (by ${new Date(end).toISOString()} at the latest), but this poll arrived ${seconds} s before that and may still be open; Warden cannot tell it from a stranger's poll under that identity, which may be handed this task's work`
        : `poller ${identity}: this state folder's worker of that identity ended at ${new Date(end).toISOString()}, but this poll arrived ${seconds} s before its end and may still be open; Warden cannot tell it from a stranger's poll under that identity, which may be handed this task's work`,
    );
  }

  it.each(rows)('a standalone worker: %s (%s)', (_what, row, verdict) => {
    const now = Date.now();
    const { stateDir, nonce } = ended(STANDALONE_RECORDS_DIR, row, now);
    const identity = standaloneWorkerIdentity(stateDir, nonce, deadPid);
    const pollers = [{ identity, lastPolledAt: now + row.polledAt }];
    const found = possiblyOpenPolls(pollers, stateDir, hostname(), now);
    if (verdict === 'open') expectNote(found, identity, row, now);
    else expect(found).toEqual([]);
    // Named once: the open-poll note is not also a refusal.
    expect(liveStandaloneWorker(pollers, stateDir, hostname(), now).refused.map((r) => r.identity)).toEqual(verdict === 'copied' ? [identity] : []);
  });

  it.each(rows)('a run or mcp serve worker: %s (%s)', (_what, row, verdict) => {
    const now = Date.now();
    const { stateDir, nonce } = ended(RUN_RECORDS_DIR, row, now);
    const identity = `warden-run/${deadPid}@${hostname()}/${nonce}`;
    const pollers = [{ identity, lastPolledAt: now + row.polledAt }];
    const found = possiblyOpenPolls(pollers, stateDir, hostname(), now);
    if (verdict === 'open') expectNote(found, identity, row, now);
    else expect(found).toEqual([]);
    expect(unvouchedPollers(pollers, stateDir, [], hostname(), now)).toEqual(verdict === 'copied' ? [identity] : []);
  });

  it('names no identity without a record of this state folder (those are named as unvouched pollers)', () => {
    const now = Date.now();
    const stateDir = mkdtempSync(join(tmpdir(), 'warden-open-poll-'));
    const pollers = [`warden-run/${deadPid}@${hostname()}/${randomBytes(16).toString('hex')}`, standaloneWorkerIdentity(stateDir, randomBytes(16).toString('hex'), deadPid), `${deadPid}@${hostname()}`].map((identity) => ({ identity, lastPolledAt: now - SECOND }));
    expect(possiblyOpenPolls(pollers, stateDir, hostname(), now)).toEqual([]);
  });
});
