/**
 * Which pollers `warden run` treats as a standalone worker it may hand its task to: only one on
 * this machine, on this state folder (by real path), whose process runs. Every other identity,
 * including `warden run`'s own in-process workers (the SDK's `<pid>@<host>`), is never reused.
 */
import { mkdtempSync, symlinkSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { liveStandaloneWorker, otherStateWorkers, parseStandaloneWorkerIdentity, standaloneWorkerIdentity, stateDirFingerprint } from '../../worker/standalone-worker';

const stateDir = mkdtempSync(join(tmpdir(), 'warden-standalone-'));
const otherDir = mkdtempSync(join(tmpdir(), 'warden-standalone-other-'));
const link = join(mkdtempSync(join(tmpdir(), 'warden-standalone-link-')), 'state');
symlinkSync(stateDir, link);
/** The pid of a process that has exited (and, right after, is not reused). */
const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();

describe('liveStandaloneWorker', () => {
  const cases: [string, string, boolean][] = [
    ['this process on this folder', standaloneWorkerIdentity(stateDir), true],
    ['the same folder through a symbolic link', standaloneWorkerIdentity(link), true],
    ['another state folder', standaloneWorkerIdentity(otherDir), false],
    ['a process that has exited', standaloneWorkerIdentity(stateDir, Number(deadPid)), false],
    ['another machine', standaloneWorkerIdentity(stateDir, process.pid, `not-${hostname()}`), false],
    ["the SDK's default identity (warden run's own worker)", `${process.pid}@${hostname()}`, false],
    ['a forged suffix', `${standaloneWorkerIdentity(stateDir)}x`, false],
  ];
  it.each(cases)('%s: %s -> %s', (_name, identity, reused) => {
    expect(liveStandaloneWorker([identity], stateDir)).toBe(reused ? identity : undefined);
  });

  it('picks the matching one among other pollers', () => {
    const mine = standaloneWorkerIdentity(stateDir);
    expect(liveStandaloneWorker([`${process.pid}@${hostname()}`, standaloneWorkerIdentity(otherDir), mine], stateDir)).toBe(mine);
  });
});

describe('identities', () => {
  it('round-trip, and name the folder by a hash, not its path', () => {
    const identity = standaloneWorkerIdentity(stateDir, 1234, 'host-a');
    expect(parseStandaloneWorkerIdentity(identity)).toEqual({ pid: 1234, host: 'host-a', stateFingerprint: stateDirFingerprint(stateDir) });
    expect(identity).not.toContain(stateDir);
  });

  it('otherStateWorkers lists standalone workers of other folders only', () => {
    const other = standaloneWorkerIdentity(otherDir);
    expect(otherStateWorkers([standaloneWorkerIdentity(stateDir), other, `${process.pid}@${hostname()}`], stateDir)).toEqual([other]);
  });
});
