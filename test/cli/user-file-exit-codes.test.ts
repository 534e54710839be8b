/**
 * A file the user names that Warden cannot use is a usage error: exit 2, a message that names the
 * file and what is wrong, whichever command meets it. Found by atk19b: a bad
 * `WARDEN_SIGNING_KEY_FILE` made `warden worker` and `warden run` exit 1 (ERR_KEYSTORE_INVALID, the
 * code of Warden's own key store), and a bad `warden baseline learn --from` file exited 1 too
 * (test/cli/monitor-commands.test.ts), while every other user file exits 2.
 *
 * Real parts: the real key source (`openKeySourceKeystore`) on real files for each way the file can
 * be bad, and the real `warden worker` on one of them (it starts its embedded Temporal server on
 * test ports, then refuses the key before it polls).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitCodeOfError } from '../../cli/exit-codes';
import { openKeySourceKeystore } from '../../identity/key-source-keystore';
import { REPO_ROOT } from '../support/warden-test-env';
import { freeServerPorts } from '../temporal/ports';

const BIN = join(REPO_ROOT, 'bin/warden.js');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-user-file-exit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const goodJwk = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });

/** Each way a signing key file can be unusable: its content and mode (undefined content: no file). */
const BAD_KEY_FILES: { name: string; content?: string; mode?: number; says: RegExp }[] = [
  { name: 'missing', says: /cannot read the signing key file/ },
  { name: 'not JSON', content: '{"kty": "OKP",, }', says: /not JSON at line 1, column 15/ },
  { name: 'YAML', content: 'kty: OKP\ncrv: Ed25519\n', says: /not JSON at line 1/ },
  { name: 'a public key only', content: JSON.stringify({ ...goodJwk(), d: undefined }), says: /is not a private Ed25519 or P-256 JWK/ },
  { name: 'an RSA key', content: JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' })), says: /is not a private Ed25519 or P-256 JWK/ },
  { name: 'readable by others', content: JSON.stringify(goodJwk()), mode: 0o644, says: /is readable by others \(mode 644\)/ },
];

async function keyFile(row: (typeof BAD_KEY_FILES)[number]): Promise<string> {
  const file = join(dir, `${row.name.replace(/\W+/g, '-')}.jwk`);
  if (row.content !== undefined) {
    await writeFile(file, row.content, { mode: 0o600 });
    await chmod(file, row.mode ?? 0o600);
  }
  return file;
}

describe('a WARDEN_SIGNING_KEY_FILE that cannot be used', () => {
  it.each(BAD_KEY_FILES)('$name: ERR_SIGNING_KEY_FILE_INVALID naming the file, a usage error (exit 2)', async (row) => {
    const file = await keyFile(row);
    const error = await openKeySourceKeystore(file).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe('ERR_SIGNING_KEY_FILE_INVALID');
    expect(error?.message).toContain(file);
    expect(error?.message).toMatch(row.says);
    // Never the key material, whatever the file held.
    if (row.content !== undefined && row.content.includes('"d"')) expect(error?.message).not.toContain(JSON.parse(row.content).d);
    expect(exitCodeOfError(error!)).toBe(EXIT.usage);
  });

  it('a good key file opens (the control row)', async () => {
    const file = join(dir, 'good.jwk');
    await writeFile(file, JSON.stringify(goodJwk()), { mode: 0o600 });
    const keystore = await openKeySourceKeystore(file);
    expect((await keystore.jwks()).keys).toHaveLength(1);
  });

  it('`warden worker` with one exits 2 and names the file and the problem', async () => {
    const file = await keyFile(BAD_KEY_FILES[1]!);
    const { WARDEN_TEMPORAL_PORT: _p, WARDEN_TEMPORAL_UI_PORT: _u, TEMPORAL_ADDRESS: _a, WARDEN_STATE_DIR: _s, ...rest } = process.env;
    const env = { ...rest, ...(await freeServerPorts()), WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_SIGNING_KEY_FILE: file };
    const outcome = await promisify(execFile)(process.execPath, [BIN, 'worker'], { env, timeout: 120_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }),
    );
    try {
      expect(outcome.code, outcome.stderr).toBe(EXIT.usage);
      expect(outcome.stderr).toContain(`ERR_SIGNING_KEY_FILE_INVALID: cannot read the signing key file ${file}: not JSON at line 1, column 15`);
    } finally {
      await promisify(execFile)(process.execPath, [BIN, 'server', 'stop'], { env, timeout: 60_000 }).catch(() => undefined);
    }
  }, 180_000);
});
