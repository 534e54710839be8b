/**
 * `warden attest verify` (and `warden receipt verify`, which reads its keys the same way) only
 * reads. Found: without `--jwks` it opened the state folder's keystore, which made a signing key
 * in a fresh folder, then failed the attestation with a key nobody had used. Now it reads the keys
 * the folder already holds and creates nothing; with none, it says which key id the attestation
 * names and how to pass `--jwks` (exit 2: nothing was verified, what was given is not enough).
 *
 * And an attested file in a sub-folder this user cannot read is reported `unreadable` (permission
 * denied, naming the path), apart from one that is `missing`. Tests run as root, who can read
 * everything, so that case runs the real CLI as another user (`setpriv` to nobody) on real folders
 * of mode 000, 700 and 711; run as a non-root user, the same rows run in this process.
 */
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteSignerFromKey } from '../../attestation/dsse';
import { claimPredicateType, jsonSubject, sha256Hex, signStatement, STATEMENT_TYPE, type Statement } from '../../attestation/in-toto-statement';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import type { Jwks, PublicJwk } from '../../identity/claims';
import { REPO_ROOT } from '../support/warden-test-env';

const execFileAsync = promisify(execFile);

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const KID = 'attested-key-1';
const jwks: Jwks = { keys: [{ ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid: KID, alg: 'EdDSA', use: 'sig' } as PublicJwk] };
const REPORT = 'the report\n';

// Readable and searchable by every user: the permission rows run the CLI as nobody.
const root = fs.mkdtempSync(join(tmpdir(), 'warden-attest-ro-'));
fs.chmodSync(root, 0o755);
const jwksFile = join(root, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify(jwks));

function statement(path: string): Statement {
  const run = { workflowId: 'wf-ro', runId: 'run-ro' };
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: `file:${path}`, digest: { sha256: sha256Hex(REPORT) } }, jsonSubject('workflow:wf-ro', run)],
    predicateType: claimPredicateType('file.sha256'),
    predicate: { claim: { kind: 'file.sha256', path, sha256: sha256Hex(REPORT) }, verdict: 'verified', reason: 'ok', run: { ...run, user: 'u' }, verifiedAt: '2026-11-30T00:00:00Z' },
  };
}

/** Writes the envelope attesting `path` and returns its file. */
async function envelopeFile(name: string, path: string): Promise<string> {
  const file = join(root, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(await signStatement(statement(path), byteSignerFromKey(privateKey, KID))));
  fs.chmodSync(file, 0o644);
  return file;
}

async function warden(args: string[], stateDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  // Only what this command reads: no WARDEN_DATABASE_URL or key file of the machine running the tests.
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { PATH: process.env.PATH, WARDEN_STATE_DIR: stateDir } };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** Every entry under `dir` with its size and modification time (absent: null). */
function snapshot(dir: string): string[] | null {
  if (!fs.existsSync(dir)) return null;
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort().map((entry) => {
    const stat = fs.statSync(join(dir, entry));
    return `${entry} ${stat.size} ${stat.mtimeMs}`;
  });
}

let envelope: string;
beforeAll(async () => {
  envelope = await envelopeFile('report', 'report.md');
});

describe('verifying without --jwks writes nothing', () => {
  it.each([
    ['attest verify', 'a state folder that does not exist', 'attest', false],
    ['attest verify', 'an empty state folder', 'attest', true],
    ['receipt verify', 'a state folder that does not exist', 'receipt', false],
    ['receipt verify', 'an empty state folder', 'receipt', true],
  ])('%s, %s: no key to verify against, says which key and how to pass --jwks, exit 2, creates nothing', async (_c, _s, command, exists) => {
    const state = join(fs.mkdtempSync(join(tmpdir(), 'warden-attest-state-')), 'state');
    if (exists) fs.mkdirSync(state);
    const before = snapshot(state);
    const { code, stderr, stdout } = await warden([command as string, 'verify', envelope], state);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('no key to verify against');
    expect(stderr).toContain(`signed by key ${KID}`);
    expect(stderr).toContain('--jwks <file>');
    expect(stderr).toContain(state);
    expect(snapshot(state)).toEqual(before);
  });

  it('with the keys the state folder already holds, verifies, and changes nothing there', async () => {
    const state = fs.mkdtempSync(join(tmpdir(), 'warden-attest-state-'));
    fs.mkdirSync(join(state, 'keys'));
    fs.writeFileSync(join(state, 'keys', 'jwks.json'), JSON.stringify(jwks));
    const before = snapshot(state);
    const { code, stdout } = await warden(['attest', 'verify', envelope], state);
    expect(stdout).toContain(`signed by ${KID}`);
    expect(code).toBe(0);
    expect(snapshot(state)).toEqual(before);
  });

  it('with --jwks, as before, and no state folder is made', async () => {
    const state = join(fs.mkdtempSync(join(tmpdir(), 'warden-attest-state-')), 'state');
    const { code } = await warden(['attest', 'verify', envelope, '--jwks', jwksFile], state);
    expect(code).toBe(0);
    expect(fs.existsSync(state)).toBe(false);
  });
});

/** Whether this process can run a command as another user (root with setpriv). */
function asNobody(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('an attested file this user cannot read is unreadable, not missing', () => {
  const ROWS: [name: string, mode: number | undefined, attested: string, status: string, detail: RegExp][] = [
    ['in a sub-folder of mode 000', 0o000, 'sub/report.md', 'unreadable', /permission denied \(EACCES\)/],
    ['in a sub-folder of mode 700 (not this user\'s)', 0o700, 'sub/report.md', 'unreadable', /permission denied \(EACCES\)/],
    ['in a sub-folder of mode 711 (searchable, not readable)', 0o711, 'sub/report.md', 'unreadable', /permission denied \(EACCES\)/],
    ['not there at all', undefined, 'sub/gone.md', 'missing', /ERR_PATH_NOT_FOUND: no such file/],
  ];
  const runner = asNobody() ? 'as nobody (setpriv)' : 'in this process (not root)';

  it.each(ROWS)(`%s (run ${runner})`, async (name, mode, attested, status, detail) => {
    const workspace = fs.mkdtempSync(join(root, 'ws-'));
    fs.chmodSync(workspace, 0o755);
    fs.mkdirSync(join(workspace, 'sub'));
    fs.writeFileSync(join(workspace, 'sub', 'report.md'), REPORT);
    fs.chmodSync(join(workspace, 'sub', 'report.md'), 0o644);
    if (mode !== undefined) fs.chmodSync(join(workspace, 'sub'), mode);
    const file = await envelopeFile(name.replace(/\W+/g, '-'), attested);
    const args = ['attest', 'verify', file, '--jwks', jwksFile, '--workspace', workspace, '--json'];
    let code: number;
    let stdout: string;
    if (asNobody()) {
      const home = fs.mkdtempSync(join(root, 'home-'));
      fs.chmodSync(home, 0o777);
      const ran = await execFileAsync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(REPO_ROOT, 'bin/warden.js'), ...args], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: home, WARDEN_STATE_DIR: join(home, 'state'), WARDEN_CODE_CACHE: 'off', XDG_CACHE_HOME: home },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
      ({ code, stdout } = ran);
    } else {
      ({ code, stdout } = await warden(args, join(root, 'state')));
    }
    const [check] = JSON.parse(stdout) as { ok: boolean; problems: string[]; subjects: { name: string; status: string; detail: string }[] }[];
    const subject = check!.subjects.find((s) => s.name === `file:${attested}`)!;
    expect(subject.status).toBe(status);
    expect(subject.detail).toMatch(detail);
    // The path is named, whole.
    expect(subject.detail).toContain(join(workspace, attested));
    expect(check!.problems.join('\n')).toContain(status === 'missing' ? 'is missing' : 'cannot be read');
    expect(code).toBe(1);
  });
});
