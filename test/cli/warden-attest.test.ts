/**
 * Attestations and receipts as users and auditors handle them: `warden run` of a task whose agent
 * makes a true and a false claim (exit 1, status refuted, one signed claim), `warden keys jwks` as
 * the one published key set, `warden attest verify` offline with that JWKS (a changed envelope, a
 * foreign JWKS or a changed file fail), and `warden receipt` / `warden receipt verify` (every kind
 * of tampering with the receipt fails, a witness's published heads and keys are honoured).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import type { TaskReceipt } from '../../attestation/task-receipt';
import type { DsseEnvelope } from '../../attestation/dsse';
import { sha256Hex } from '../../attestation/in-toto-statement';
import type { TaskResult } from '../../task/task-run';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const execFileAsync = promisify(execFile);

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { address } = testTemporalAddress();
  return { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop(), ...extra };
}

async function wardenProcess(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), ...args], { cwd, env: env(), maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A command run in this process, as the CLI would run it. */
async function warden(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: env(extraEnv) };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const REPORT = '# Report\nall good\n';
let dir: string;
let workspace: string;
let result: TaskResult;
let jwksFile: string;
let resultFile: string;

beforeAll(async () => {
  dir = makeTempDir('attest-cli');
  workspace = join(dir, 'ws');
  fs.mkdirSync(workspace);
  fs.writeFileSync(
    join(dir, 'task.yaml'),
    `user: ada@example.com
intent: write the report
agent:
  name: writer
  model:
    driver: scripted
    script:
      - tool: fs.write
        args: { path: report.md, content: ${JSON.stringify(REPORT)} }
      - final: report written
        claims:
          - { kind: file.sha256, path: report.md, sha256: ${sha256Hex(REPORT)} }
          - { kind: file.contains, path: report.md, text: "all bad" }
          - the report is good
tools: { builtin: [fs.write] }
grants: { tools: [fs.write] }
resources: { workspace: ws }
`,
  );
  const run = await wardenProcess(['run', 'task.yaml', '--json'], dir);
  expect(run.code, run.stderr).toBe(1);
  result = JSON.parse(run.stdout) as TaskResult;
  resultFile = join(dir, 'result.json');
  fs.writeFileSync(resultFile, run.stdout);
  const keys = await warden(['keys', 'jwks']);
  expect(keys.code, keys.stderr).toBe(0);
  jwksFile = join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, keys.stdout);
}, 180_000);

describe('warden run with claims', () => {
  it('exits 1 and reports the task refuted when a claim is false, with every verdict in --json', () => {
    expect(result.status).toBe('refuted');
    expect(result.reason).toBe('1 claim refuted: writer claimed "report.md contains "all bad"", but report.md does not contain the text');
    expect(result.claims?.map((c) => c.verdict)).toEqual(['verified', 'refuted', 'unverified']);
    expect(result.claims?.[0]?.envelope?.payloadType).toBe('application/vnd.in-toto+json');
  });

  it('shows each verdict in the task timeline (warden trace, the console), backed by its custody record', async () => {
    const out = await warden(['trace', result.workflowId, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const timeline = JSON.parse(out.stdout) as { entries: { kind: string; seq: number | null; text: string }[] };
    const claims = timeline.entries.filter((e) => e.kind === 'claim');
    expect(claims.map((e) => e.text.split(':')[0])).toEqual(['verified', 'refuted', 'unverified']);
    expect(claims.map((e) => e.seq)).toEqual(result.claims?.map((c) => c.custody?.seq));
    expect(claims[1]?.text).toMatch(/writer claimed .*all bad.* — report\.md does not contain the text/);
    // After the outcome: the verdicts come from checks made once the task had committed.
    expect(timeline.entries.findIndex((e) => e.kind === 'claim')).toBeGreaterThan(timeline.entries.findIndex((e) => e.kind === 'outcome'));
  });

  it('publishes one JWKS holding the signing and the custody keys', () => {
    const jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(result.claims?.[0]?.envelope?.signatures[0]?.keyid);
    expect(jwks.keys.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
  });
});

describe('warden attest verify', () => {
  it('verifies the signed claims of a run result offline and re-hashes their files', async () => {
    const out = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--workspace', workspace]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^OK {6}.*file\.sha256 verified at/m);
    expect(out.stdout).toMatch(/matched {5}file:report\.md/);
  });

  function envelopeFile(change: (e: DsseEnvelope) => unknown): string {
    const file = join(dir, `envelope-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(change(structuredClone(result.claims![0]!.envelope!))));
    return file;
  }
  const payloadEdit = (e: DsseEnvelope, from: string, to: string) => ({ ...e, payload: Buffer.from(Buffer.from(e.payload, 'base64').toString().replace(from, to)).toString('base64') });

  it.each<[string, (e: DsseEnvelope) => unknown, RegExp]>([
    ['the claim in the payload changed', (e) => payloadEdit(e, '"kind":"file.sha256"', '"kind":"file.sha512"'), /ERR_ATTESTATION_SIGNATURE/],
    ['the verdict in the payload changed', (e) => payloadEdit(e, '"verdict":"verified"', '"verdict":"verifiee"'), /ERR_ATTESTATION_SIGNATURE/],
    ['the signature re-labelled to another key', (e) => ({ ...e, signatures: [{ ...e.signatures[0], keyid: 'nobody' }] }), /ERR_ATTESTATION_KEY_UNKNOWN/],
    ['the payload type changed', (e) => ({ ...e, payloadType: 'application/json' }), /ERR_ATTESTATION_PAYLOAD_TYPE/],
    ['a field added', (e) => ({ ...e, note: 'trust me' }), /ERR_ATTESTATION_MALFORMED/],
  ])('fails when %s', async (_name, change, message) => {
    const out = await warden(['attest', 'verify', envelopeFile(change), '--jwks', jwksFile]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(message);
  });

  it('with --task, fails an attestation about another task', async () => {
    expect((await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--task', result.workflowId])).code).toBe(0);
    const out = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--task', 'warden-someone-else']);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/ERR_ATTESTATION_SUBJECT: the attestation is about task .*, not task warden-someone-else/);
  });

  it('fails with the JWKS of another deployment', async () => {
    const other = makeTempDir('attest-other');
    const keys = await warden(['keys', 'jwks'], { WARDEN_STATE_DIR: other });
    const otherJwks = join(dir, 'other-jwks.json');
    fs.writeFileSync(otherJwks, keys.stdout);
    const out = await warden(['attest', 'verify', resultFile, '--jwks', otherJwks]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/ERR_ATTESTATION_KEY_UNKNOWN/);
    // A JWKS named: no note about the default.
    expect(out.stderr).not.toContain('note: checked against the keys of the state folder');
    // The default JWKS, of another state folder: the note says where the keys came from and how to name the signer's.
    const defaulted = await warden(['attest', 'verify', resultFile], { WARDEN_STATE_DIR: other });
    expect(defaulted.code).toBe(1);
    expect(defaulted.stderr).toContain(`warden attest: note: checked against the keys of the state folder ${other}; a claim signed by another deployment or a WARDEN_SIGNING_KEY_FILE needs --jwks <file>`);
  });

  it('fails when an attested file changed since', async () => {
    const copy = makeTempDir('attest-ws-copy');
    fs.writeFileSync(join(copy, 'report.md'), `${REPORT}edited\n`);
    const out = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--workspace', copy]);
    expect(out.code).toBe(1);
    // Names the file it hashed, what it hashes to now and what was attested.
    expect(out.stdout).toContain(`ERR_ATTESTATION_SUBJECT: subject file:report.md does not match: ${join(copy, 'report.md')} now hashes to ${sha256Hex(`${REPORT}edited\n`)}, not the attested ${sha256Hex(REPORT)}`);
  });

  /** Each way `--workspace` can name no folder: what it is, and what the message says. */
  const NOT_A_FOLDER: { name: string; make: (path: string) => void; says: (path: string) => string }[] = [
    { name: 'nothing there', make: () => undefined, says: (path) => `no such folder (${path})` },
    { name: 'a file', make: (path) => fs.writeFileSync(path, REPORT), says: (path) => `${path} is not a folder` },
    { name: 'a path through a file', make: (path) => fs.writeFileSync(join(path, '..'), REPORT), says: (path) => `a part of ${path} is not a folder` },
  ];

  it.each(NOT_A_FOLDER)('--workspace naming $name is a usage error (exit 2) naming it, not a failed attestation', async (row) => {
    const base = join(makeTempDir('attest-ws-none'), 'x');
    const path = row.name === 'a path through a file' ? join(base, 'inside') : base;
    row.make(path);
    const out = await warden(['attest', 'verify', resultFile, '--jwks', jwksFile, '--workspace', path]);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(`warden attest: --workspace ${path}: ${row.says(path)}`);
    expect(out.stdout).toBe('');
  });

  it.each([
    [['attest', 'verify'], /expected: verify <file>/],
    [['attest', 'verify', '/nonexistent.json'], /ERR_INPUT_FILE_UNREADABLE: cannot read file \/nonexistent\.json: no such file: looked for \/nonexistent\.json/],
    [['attest', 'check', 'x'], /expected: verify <file>/],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const out = await warden(args);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(message);
  });

  it('says so (exit 2) for a file that is not JSON or a JWKS that is not one', async () => {
    const notJson = join(dir, 'not.json');
    fs.writeFileSync(notJson, 'hello');
    expect((await warden(['attest', 'verify', notJson])).stderr).toMatch(/is not JSON/);
    const out = await warden(['attest', 'verify', resultFile, '--jwks', resultFile]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/is not a JWKS/);
  });
});

describe('warden receipt', () => {
  let receiptFile: string;
  let receipt: TaskReceipt;
  let witness: string;

  beforeAll(async () => {
    witness = join(dir, 'witness/');
    receiptFile = join(dir, 'receipt.json');
    const out = await warden(['receipt', result.workflowId, '--out', receiptFile], { WARDEN_CUSTODY_WITNESS: witness });
    expect(out.code, out.stderr).toBe(0);
    receipt = JSON.parse(fs.readFileSync(receiptFile, 'utf8')) as TaskReceipt;
  }, 60_000);

  it('holds the task, its actions, its claims and the inclusion proof of each custody record', async () => {
    const statement = JSON.parse(Buffer.from(receipt.statement.payload, 'base64').toString()) as { predicate: Record<string, any> };
    expect(statement.predicate.task).toMatchObject({ workflowId: result.workflowId, user: 'ada@example.com', status: 'refuted', intentHash: `sha256:${sha256Hex('write the report')}` });
    expect(statement.predicate.actions).toEqual([expect.objectContaining({ tool: 'fs.write', decision: 'allow', executed: true, argsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    expect(statement.predicate.claims.map((c: { verdict: string }) => c.verdict)).toEqual(['verified', 'refuted', 'unverified']);
    expect(receipt.attestations).toHaveLength(1);
    const kinds = receipt.custody.records.map((r) => r.record.kind);
    expect(kinds.filter((k) => k === 'claim-verdict')).toHaveLength(3);
    expect(kinds).toContain('span');
    // No argument value travels in a receipt.
    expect(fs.readFileSync(receiptFile, 'utf8')).not.toContain('all good');
  });

  it('verifies offline with only the published JWKS, and against the witness', async () => {
    const out = await warden(['receipt', 'verify', receiptFile, '--jwks', jwksFile]);
    expect(out.code, out.stdout).toBe(0);
    expect(out.stdout).toMatch(/^receipt OK: task .* for ada@example.com: refuted/);
    expect(out.stdout).toMatch(/claim refuted +writer: report\.md contains "all bad"/);
    const withWitness = await warden(['receipt', 'verify', receiptFile, '--jwks', jwksFile, '--witness', witness]);
    expect(withWitness.code, withWitness.stdout).toBe(0);
    expect(withWitness.stdout).toMatch(/against a tree head the witness published/);
  });

  it('trusts the custody key of the witness when the JWKS has only the signing keys', async () => {
    const jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] };
    const signingOnly = join(dir, 'signing-only.json');
    fs.writeFileSync(signingOnly, JSON.stringify({ keys: jwks.keys.filter((k) => k.kid !== receipt.custody.checkpoint.kid) }));
    const without = await warden(['receipt', 'verify', receiptFile, '--jwks', signingOnly]);
    expect(without.code).toBe(1);
    expect(without.stdout).toMatch(/ERR_ATTESTATION_KEY_UNKNOWN: the custody key/);
    expect((await warden(['receipt', 'verify', receiptFile, '--jwks', signingOnly, '--witness', witness])).code).toBe(0);
  });

  function tampered(change: (r: TaskReceipt) => void): string {
    const copy = structuredClone(receipt);
    change(copy);
    const file = join(dir, `receipt-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(copy));
    return file;
  }
  const editStatement = (r: TaskReceipt, from: string, to: string) => {
    r.statement.payload = Buffer.from(Buffer.from(r.statement.payload, 'base64').toString().replace(from, to)).toString('base64');
  };

  it.each<[string, (r: TaskReceipt) => void, RegExp]>([
    ['an action decision changed', (r) => editStatement(r, '"decision":"allow"', '"decision":"deny"'), /ERR_ATTESTATION_SIGNATURE/],
    ['the task status changed', (r) => editStatement(r, '"status":"refuted"', '"status":"completed"'), /ERR_ATTESTATION_SIGNATURE/],
    ['an attestation removed', (r) => void r.attestations.pop(), /ERR_ATTESTATION_SUBJECT: the attestation of verified claim/],
    ['a custody record removed', (r) => void r.custody.records.pop(), /names \d+ custody records and proves \d+/],
    ['a verdict record rewritten', (r) => {
      const entry = r.custody.records.find((x) => x.record.kind === 'claim-verdict' && (x.record.body as { verdict: string }).verdict === 'refuted')!;
      (entry.record.body as { verdict: string }).verdict = 'verified';
    }, /ERR_CUSTODY_BROKEN: custody record \d+: record \d+'s content does not match its hash/],
    ['an audit path altered', (r) => {
      const entry = r.custody.records.find((x) => x.auditPath.length > 0)!;
      entry.auditPath[0] = '0'.repeat(64);
    }, /the audit path does not lead to the checkpoint root/],
    ['the tree head swapped', (r) => void (r.custody.checkpoint.rootHash = '1'.repeat(64)), /the custody tree head is not the one the receipt signed/],
    ['not a receipt', (r) => void ((r as { format: string }).format = 'something'), /ERR_ATTESTATION_MALFORMED: not a task receipt/],
  ])('rejects a receipt with %s', async (_name, change, message) => {
    const out = await warden(['receipt', 'verify', tampered(change), '--jwks', jwksFile]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(message);
  });

  it('rejects a receipt whose tree head the witness never published', async () => {
    const emptyWitness = join(dir, 'other-witness/');
    fs.mkdirSync(emptyWitness);
    const out = await warden(['receipt', 'verify', receiptFile, '--jwks', jwksFile, '--witness', emptyWitness]);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/not among those the witness published/);
  });

  it('refuses a task that does not exist, and bad usage', async () => {
    const missing = await warden(['receipt', 'no-such-task-xyz']);
    expect(missing.code).toBe(1);
    expect((await warden(['receipt'])).code).toBe(2);
    expect((await warden(['receipt', 'verify'])).code).toBe(2);
    expect((await warden(['receipt', 'x', '--jwks', jwksFile])).code).toBe(2);
  });
});
