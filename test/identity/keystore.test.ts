import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEYS_DIR, openKeystore, readJwksFile } from '../../identity/keystore';
import { ownProcessStartTime, readProcStat } from '../../process-stat';
import { findSecretsIn } from '../../identity/redact';
import { issueTaskGrant, verifyTaskGrant } from '../../identity/task-grant';
import { codeOf, FrozenClock, IdentityChild, makeTempDir, rootGrantInput, T0 } from './identity-test-kit';
import { makeZombie } from '../support/zombie-process';

const dirs: string[] = [];
function stateDir(): string {
  const dir = makeTempDir('keystore');
  dirs.push(dir);
  return dir;
}
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  for (const cleanup of cleanups) cleanup();
});

const mode = (file: string) => fs.statSync(file).mode & 0o777;

describe('a keystore on first use', () => {
  it('creates one Ed25519 key, private files 0600 in a 0700 folder', async () => {
    const dir = stateDir();
    const keystore = await openKeystore({ stateDir: dir });
    const keysDir = path.join(dir, KEYS_DIR);
    expect(mode(keysDir)).toBe(0o700);
    const files = fs.readdirSync(keysDir).sort();
    expect(files).toEqual([`${keystore.activeKid()}.jwk.json`, 'index.json', 'jwks.json'].sort());
    for (const file of files) expect(mode(path.join(keysDir, file)), file).toBe(0o600);
    expect(keystore.list()).toEqual([expect.objectContaining({ kid: keystore.activeKid(), alg: 'EdDSA', status: 'active' })]);
    const index = JSON.parse(fs.readFileSync(path.join(keysDir, 'index.json'), 'utf8'));
    expect(index).toEqual({ version: 1, active: keystore.activeKid(), keys: [{ kid: keystore.activeKid(), alg: 'EdDSA', createdAt: expect.any(String) }] });
  });

  it('publishes only public members, with use "sig", alg and kid', async () => {
    const dir = stateDir();
    const keystore = await openKeystore({ stateDir: dir });
    const jwks = keystore.jwks();
    expect(jwks.keys).toHaveLength(1);
    expect(Object.keys(jwks.keys[0] as object).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: keystore.activeKid() });
    expect(readJwksFile(dir)).toEqual(jwks);
    // The key file does hold a private scalar; nothing the keystore hands out does.
    expect(findSecretsIn(fs.readFileSync(path.join(dir, KEYS_DIR, `${keystore.activeKid()}.jwk.json`), 'utf8'))).toHaveLength(1);
    expect(findSecretsIn([jwks, keystore.list(), JSON.stringify(keystore), keystore.signer()])).toEqual([]);
  });

  it('creates an ES256 key when asked, and reopening keeps whatever key exists', async () => {
    const dir = stateDir();
    const first = await openKeystore({ stateDir: dir, alg: 'ES256' });
    expect(first.jwks().keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    const again = await openKeystore({ stateDir: dir, alg: 'EdDSA' });
    expect(again.activeKid()).toBe(first.activeKid());
    expect(again.list()).toHaveLength(1);
  });

  it('concurrent opens in one process agree on one key', async () => {
    const dir = stateDir();
    const keystores = await Promise.all(Array.from({ length: 8 }, () => openKeystore({ stateDir: dir })));
    expect(new Set(keystores.map((k) => k.activeKid())).size).toBe(1);
    expect(fs.readdirSync(path.join(dir, KEYS_DIR)).filter((f) => f.endsWith('.jwk.json'))).toHaveLength(1);
  });

  it('concurrent opens in four processes agree on one key', async () => {
    const dir = stateDir();
    const children = Array.from({ length: 4 }, () => new IdentityChild());
    try {
      const startAt = Date.now() + 1500; // all four are up and waiting by then
      const replies = await Promise.all(children.map((c) => c.request({ type: 'open-keystore', stateDir: dir, startAt })));
      expect(replies.every((r) => r.ok)).toBe(true);
      expect(new Set(replies.map((r) => r.kid)).size).toBe(1);
      expect(fs.readdirSync(path.join(dir, KEYS_DIR)).filter((f) => f.endsWith('.jwk.json'))).toHaveLength(1);
      expect((await openKeystore({ stateDir: dir })).activeKid()).toBe(replies[0]?.kid);
    } finally {
      await Promise.all(children.map((c) => c.close()));
    }
  });

  // A lock whose holder no longer runs is cleared at once; before, a zombie holder or a pid reused
  // by a live process kept it until it was 60 s old, and every open meanwhile failed ERR_KEYSTORE_LOCKED.
  it.each([
    ['a process that died and was reaped (a lock written before start times were kept)', async () => `${spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid}:crashed`],
    ['a process that was killed and not yet reaped (a zombie)', async () => {
      const zombie = await makeZombie();
      cleanups.push(() => zombie.close());
      return `${zombie.pid}:${zombie.startTime}:crashed`;
    }],
    ['a process whose pid now names another, live process', async () => {
      const live = spawn('sleep', ['600'], { stdio: 'ignore' });
      cleanups.push(() => live.kill('SIGKILL'));
      await new Promise((resolve) => live.once('spawn', resolve));
      return `${live.pid}:${BigInt(readProcStat(live.pid!)!.startTime) + 1n}:crashed`;
    }],
  ])('clears a lock left by %s', async (_label, lockOf) => {
    const dir = stateDir();
    fs.mkdirSync(path.join(dir, KEYS_DIR), { recursive: true });
    fs.writeFileSync(path.join(dir, KEYS_DIR, '.lock'), await lockOf());
    const keystore = await openKeystore({ stateDir: dir });
    expect(keystore.list()).toHaveLength(1);
    expect(fs.existsSync(path.join(dir, KEYS_DIR, '.lock'))).toBe(false);
  });

  // 'unknown': what a holder that cannot read /proc (another platform, a container without it)
  // records as its start time (ownProcessStartTime); before, such a running holder counted as gone
  // and its lock was cleared under it.
  // A lock minutes old: before, any lock older than 60 s was cleared even while its holder ran
  // (file-lock.ts explains why a live holder now keeps it).
  it.each([
    ['its pid and start time', () => `${process.pid}:${ownProcessStartTime()}:held-elsewhere`, undefined],
    ['its pid, its start time unknown to it (no /proc)', () => `${process.pid}:unknown:held-elsewhere`, undefined],
    ['its pid and start time, the lock minutes old', () => `${process.pid}:${ownProcessStartTime()}:held-elsewhere`, (Date.now() - 5 * 60_000) / 1000],
  ])('waits for a lock whose holder runs (%s)', async (_label, lockText, mtime) => {
    const dir = stateDir();
    fs.mkdirSync(path.join(dir, KEYS_DIR), { recursive: true });
    const lock = path.join(dir, KEYS_DIR, '.lock');
    const text = lockText();
    fs.writeFileSync(lock, text);
    if (mtime !== undefined) fs.utimesSync(lock, mtime, mtime);
    const opened = openKeystore({ stateDir: dir });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fs.readFileSync(lock, 'utf8')).toBe(text);
    fs.rmSync(lock);
    expect((await opened).list()).toHaveLength(1);
  });

  it('tightens loosened permissions when it reads the files', async () => {
    const dir = stateDir();
    const keystore = await openKeystore({ stateDir: dir });
    const keyFile = path.join(dir, KEYS_DIR, `${keystore.activeKid()}.jwk.json`);
    fs.chmodSync(keyFile, 0o644);
    fs.chmodSync(path.join(dir, KEYS_DIR), 0o755);
    await openKeystore({ stateDir: dir });
    expect(mode(keyFile)).toBe(0o600);
    expect(mode(path.join(dir, KEYS_DIR))).toBe(0o700);
  });

  it('refuses a key file that does not match its kid, and a corrupt index', async () => {
    const dir = stateDir();
    const keystore = await openKeystore({ stateDir: dir });
    const other = await openKeystore({ stateDir: stateDir() });
    const keyFile = path.join(dir, KEYS_DIR, `${keystore.activeKid()}.jwk.json`);
    const swapped = JSON.parse(fs.readFileSync(path.join(other.dir, `${other.activeKid()}.jwk.json`), 'utf8'));
    fs.writeFileSync(keyFile, JSON.stringify(swapped));
    expect(await codeOf(openKeystore({ stateDir: dir }))).toBe('ERR_KEYSTORE_INVALID');
    fs.writeFileSync(path.join(dir, KEYS_DIR, 'index.json'), '{"version":1,"active":"nope","keys":[]}');
    expect(await codeOf(openKeystore({ stateDir: dir }))).toBe('ERR_KEYSTORE_INVALID');
  });
});

describe('rotation', () => {
  it('keeps the old key verifying until every token it signed has expired, then prunes it', async () => {
    const dir = stateDir();
    const time = new FrozenClock();
    const keystore = await openKeystore({ stateDir: dir, clock: time.clock });
    const oldKid = keystore.activeKid();
    const grant = await issueTaskGrant(keystore, rootGrantInput({ expiresAt: T0 + 10 * 60_000 }));

    time.advance(60_000);
    const created = await keystore.rotate({ maxTokenLifetimeMs: 10 * 60_000 });
    expect(created.kid).not.toBe(oldKid);
    expect(keystore.activeKid()).toBe(created.kid);
    expect(keystore.list().map((k) => [k.kid, k.status])).toEqual([
      [created.kid, 'active'],
      [oldKid, 'retired'],
    ]);
    expect(keystore.list()[1]).toMatchObject({ retiredAt: new Date(T0 + 60_000).toISOString(), verifyUntil: new Date(T0 + 11 * 60_000).toISOString() });
    expect(keystore.jwks().keys.map((k) => k.kid)).toEqual([created.kid, oldKid]);
    expect(readJwksFile(dir).keys.map((k) => k.kid).sort()).toEqual([created.kid, oldKid].sort());

    // New tokens carry the new kid; the old grant still verifies until it expires.
    const fresh = await issueTaskGrant(keystore, rootGrantInput());
    expect(JSON.parse(Buffer.from(fresh.token.split('.')[0] as string, 'base64url').toString()).kid).toBe(created.kid);
    time.advance(8 * 60_000); // T0 + 9 min
    expect((await verifyTaskGrant(grant.token, keystore, { clock: time.clock })).id).toBe(grant.id);

    // Past retiredAt + maxTokenLifetime the key is gone from the JWKS, and the next open deletes it.
    time.advance(2 * 60_000 + 1); // T0 + 11 min
    expect(keystore.jwks().keys.map((k) => k.kid)).toEqual([created.kid]);
    const reopened = await openKeystore({ stateDir: dir, clock: time.clock });
    expect(reopened.list().map((k) => k.kid)).toEqual([created.kid]);
    expect(fs.existsSync(path.join(dir, KEYS_DIR, `${oldKid}.jwk.json`))).toBe(false);
    expect(readJwksFile(dir).keys.map((k) => k.kid)).toEqual([created.kid]);
  });

  it('can switch the algorithm, and a rotation prunes keys past their window', async () => {
    const dir = stateDir();
    const time = new FrozenClock();
    const keystore = await openKeystore({ stateDir: dir, clock: time.clock });
    const first = keystore.activeKid();
    const second = await keystore.rotate({ maxTokenLifetimeMs: 1000, alg: 'ES256' });
    expect(second.alg).toBe('ES256');
    time.advance(2000);
    const third = await keystore.rotate({ maxTokenLifetimeMs: 1000 });
    expect(third.alg).toBe('ES256');
    expect(keystore.list().map((k) => k.kid)).toEqual([third.kid, second.kid]);
    expect(fs.existsSync(path.join(dir, KEYS_DIR, `${first}.jwk.json`))).toBe(false);
  });

  it('another process sees the rotation on refresh and signs with the new key', async () => {
    const dir = stateDir();
    const a = await openKeystore({ stateDir: dir });
    const b = await openKeystore({ stateDir: dir });
    const rotated = await b.rotate({ maxTokenLifetimeMs: 60_000 });
    expect(a.activeKid()).not.toBe(rotated.kid);
    expect(await a.refresh()).toBe(true);
    expect(a.activeKid()).toBe(rotated.kid);
    expect(a.signer().kid).toBe(rotated.kid);
    expect(await a.refresh()).toBe(false);
  });

  it('refuses a negative lifetime', async () => {
    const keystore = await openKeystore({ stateDir: stateDir() });
    await expect(keystore.rotate({ maxTokenLifetimeMs: -1 })).rejects.toThrow(TypeError);
  });
});
