/**
 * A file the user names that Warden cannot use is a usage error: exit 2, a message that names the
 * file and what is wrong, whichever command meets it. Found by atk19b: a bad
 * `WARDEN_SIGNING_KEY_FILE` made `warden worker` and `warden run` exit 1 (ERR_KEYSTORE_INVALID, the
 * code of Warden's own key store), and a bad `warden baseline learn --from` file exited 1 too
 * (test/cli/monitor-commands.test.ts), while every other user file exits 2.
 *
 * Real parts: the real key source (`openKeySourceKeystore`) on real files for each way the file can
 * be bad, and the real `warden worker` and `warden run` on one of them: each refuses the key
 * before it starts its embedded Temporal server or dials TEMPORAL_ADDRESS (the port stays closed),
 * so the one message is the one thing to fix. `warden run --no-worker` starts no worker and leaves
 * the key file to the workers that use it.
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
import { keysCommand } from '../../cli/commands/keys';
import { REPO_ROOT } from '../support/warden-test-env';
import { freeServerPorts } from '../temporal/ports';
import { connect } from 'node:net';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

const BIN = join(REPO_ROOT, 'bin/warden.js');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-user-file-exit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const goodJwk = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
const p256Jwk = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

/** Each way a signing key file can be unusable: its content and mode (undefined content: no file). */
const BAD_KEY_FILES: { name: string; content?: string; mode?: number; says: RegExp }[] = [
  { name: 'missing', says: /cannot read the signing key file/ },
  { name: 'not JSON', content: '{"kty": "OKP",, }', says: /not JSON at line 1, column 15/ },
  { name: 'YAML', content: 'kty: OKP\ncrv: Ed25519\n', says: /not JSON at line 1/ },
  { name: 'a public key only', content: JSON.stringify({ ...goodJwk(), d: undefined }), says: /is not a private Ed25519 or P-256 JWK/ },
  { name: 'an RSA key', content: JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' })), says: /is not a private Ed25519 or P-256 JWK/ },
  { name: 'readable by others', content: JSON.stringify(goodJwk()), mode: 0o644, says: /is readable by others \(mode 644\)/ },
  // The right fields, but no key pair: each would crash the import, or sign what no published key verifies.
  { name: 'Ed25519 halves of two keys', content: JSON.stringify({ ...goodJwk(), x: goodJwk().x }), says: /holds no usable Ed25519 key: its fields do not make one key pair/ },
  { name: 'a P-256 point off the curve', content: JSON.stringify((({ x, ...rest }) => ({ ...rest, x, y: x }))(p256Jwk())), says: /holds no usable P-256 key/ },
  { name: 'a P-256 scalar of zero', content: JSON.stringify({ ...p256Jwk(), d: 'A'.repeat(43) }), says: /holds no usable P-256 key/ },
  { name: 'P-256 halves of two keys', content: JSON.stringify({ ...p256Jwk(), x: p256Jwk().x, y: p256Jwk().y }), says: /holds no usable P-256 key/ },
  { name: 'a public key (as `warden keys jwks` prints)', content: JSON.stringify((({ d: _d, ...rest }) => rest)(goodJwk())), says: /has no "d": a public key, such as one from `warden keys jwks`, cannot sign/ },
  { name: 'missing, said in words', says: /no such file/ },
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

  it('`warden keys` with a key file set: list shows its key, rotate refuses (exit 2), a bad file is exit 2', async () => {
    const good = join(dir, 'keys-good.jwk');
    await writeFile(good, JSON.stringify(goodJwk()), { mode: 0o600 });
    const kid = (await openKeySourceKeystore(good)).activeKid();
    const keys = async (argv: string[], file: string) => {
      const out = { stdout: '', stderr: '' };
      const code = await keysCommand(argv, { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env: { WARDEN_STATE_DIR: join(dir, 'keys-state'), WARDEN_SIGNING_KEY_FILE: file } });
      return { code, ...out };
    };
    const listed = await keys(['list'], good);
    expect(listed.code, listed.stderr).toBe(EXIT.ok);
    expect(listed.stdout.trim().split('\n')).toHaveLength(1);
    expect(listed.stdout).toMatch(new RegExp(`^${kid}  EdDSA  created .*  active`));
    const rotated = await keys(['rotate'], good);
    expect(rotated.code).toBe(EXIT.usage);
    expect(rotated.stderr).toContain(`the signing key comes from WARDEN_SIGNING_KEY_FILE (${good}); rotate it by replacing that file on every worker`);
    const bad = await keys(['list'], await keyFile(BAD_KEY_FILES[1]!));
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toContain('ERR_SIGNING_KEY_FILE_INVALID');
  });

  it('a good key file opens (the control row)', async () => {
    const file = join(dir, 'good.jwk');
    await writeFile(file, JSON.stringify(goodJwk()), { mode: 0o600 });
    const keystore = await openKeySourceKeystore(file);
    expect((await keystore.jwks()).keys).toHaveLength(1);
  });

  /** `warden <argv>` with `file` as the signing key file, on free test ports; its exit code and stderr. */
  async function wardenWithKeyFile(argv: string[], file: string, extraEnv: NodeJS.ProcessEnv = {}) {
    const { WARDEN_TEMPORAL_PORT: _p, WARDEN_TEMPORAL_UI_PORT: _u, TEMPORAL_ADDRESS: _a, WARDEN_STATE_DIR: _s, ...rest } = process.env;
    const ports = await freeServerPorts();
    const env: NodeJS.ProcessEnv = { ...rest, ...ports, WARDEN_STATE_DIR: join(dir, `state-${ports.WARDEN_TEMPORAL_PORT}`), WARDEN_SIGNING_KEY_FILE: file, ...extraEnv };
    const outcome = await promisify(execFile)(process.execPath, [BIN, ...argv], { env, timeout: 120_000, cwd: REPO_ROOT }).then(
      () => ({ code: 0 as number | undefined, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }),
    );
    // Whatever the command did, no embedded server of this row may outlive it.
    const serverAnswers = await portAnswers(Number(ports.WARDEN_TEMPORAL_PORT));
    if (serverAnswers) await promisify(execFile)(process.execPath, [BIN, 'server', 'stop'], { env, timeout: 60_000 }).catch(() => undefined);
    return { ...outcome, serverAnswers };
  }

  /** The command that would start a worker here, with the key file refused before anything starts or is dialled. */
  const STARTS_A_WORKER: { name: string; argv: string[]; env?: NodeJS.ProcessEnv }[] = [
    { name: '`warden worker` (embedded server)', argv: ['worker'] },
    { name: '`warden worker` (TEMPORAL_ADDRESS with nothing listening)', argv: ['worker'], env: { TEMPORAL_ADDRESS: '127.0.0.1:9' } },
    { name: '`warden run` (embedded server)', argv: ['run', 'examples/hello.yaml'] },
    { name: '`warden run --worker` (TEMPORAL_ADDRESS with nothing listening)', argv: ['run', '--worker', 'examples/hello.yaml'], env: { TEMPORAL_ADDRESS: '127.0.0.1:9' } },
  ];

  it.each(STARTS_A_WORKER)('$name exits 2 naming the file and the problem, and starts no server', async (row) => {
    const file = await keyFile(BAD_KEY_FILES[1]!);
    const outcome = await wardenWithKeyFile(row.argv, file, row.env);
    expect(outcome.code, outcome.stderr).toBe(EXIT.usage);
    expect(outcome.stderr).toContain(`ERR_SIGNING_KEY_FILE_INVALID: cannot read the signing key file ${file}: not JSON at line 1, column 15`);
    expect(outcome.stderr).not.toContain('ERR_TEMPORAL_UNREACHABLE');
    expect(outcome.serverAnswers).toBe(false);
  }, 180_000);

  it('`warden run --no-worker` does not judge a key file no worker of its own would use', async () => {
    const file = await keyFile(BAD_KEY_FILES[1]!);
    const outcome = await wardenWithKeyFile(['run', '--no-worker', 'examples/hello.yaml'], file, { TEMPORAL_ADDRESS: '127.0.0.1:9' });
    expect(outcome.stderr).not.toContain('ERR_SIGNING_KEY_FILE_INVALID');
    expect(outcome.stderr).toContain('ERR_TEMPORAL_UNREACHABLE');
  }, 180_000);
});
