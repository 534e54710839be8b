/**
 * `warden attest verify`'s checks past the signature: even an envelope signed by a trusted key
 * passes only if it attests a verified Warden claim about the run it names, and (given the
 * workspace) every attested file still hashes to its digest; a file subject never reads outside
 * the workspace given.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { byteSignerFromKey } from '../../attestation/dsse';
import { claimPredicateType, jsonSubject, sha256Hex, signStatement, STATEMENT_TYPE, type Statement } from '../../attestation/in-toto-statement';
import { verifyClaimAttestation } from '../../attestation/verify-attestation';
import type { Jwks, PublicJwk } from '../../identity/claims';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = byteSignerFromKey(privateKey, 'k1');
const jwks: Jwks = { keys: [{ ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid: 'k1', alg: 'EdDSA', use: 'sig' } as PublicJwk] };

const root = makeTempDir('attest-verify');
const workspace = join(root, 'ws');
fs.mkdirSync(workspace);
fs.writeFileSync(join(workspace, 'report.md'), 'report');
fs.writeFileSync(join(root, 'secret.txt'), 'report');
fs.symlinkSync(join(root, 'secret.txt'), join(workspace, 'link.md'));

const run = { workflowId: 'wf-1', runId: 'run-1' };

function statement(change: (s: Statement) => void = () => {}): Statement {
  const s: Statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name: 'file:report.md', digest: { sha256: sha256Hex('report') } }, jsonSubject('workflow:wf-1', run), { name: 'custody:7', digest: { sha256: 'a'.repeat(64) } }],
    predicateType: claimPredicateType('file.sha256'),
    predicate: { claim: { kind: 'file.sha256', path: 'report.md', sha256: sha256Hex('report') }, verdict: 'verified', reason: 'ok', run: { ...run, user: 'u' }, verifiedAt: '2026-11-30T00:00:00Z' },
  };
  change(s);
  return s;
}

async function check(change?: (s: Statement) => void, workspaceDir: string | null = workspace) {
  return verifyClaimAttestation(await signStatement(statement(change), signer), jwks, workspaceDir === null ? {} : { workspace: workspaceDir });
}

describe('verifyClaimAttestation', () => {
  it('passes a verified claim whose file still matches; the custody subject is left to the receipt', async () => {
    const result = await check();
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.subjects.map((s) => [s.name, s.status])).toEqual([
      ['file:report.md', 'matched'],
      ['workflow:wf-1', 'matched'],
      ['custody:7', 'not-checked'],
    ]);
  });

  it('does not check files without a workspace, and says so', async () => {
    const result = await check(undefined, null);
    expect(result.ok).toBe(true);
    expect(result.subjects[0]).toMatchObject({ status: 'not-checked', detail: 'no --workspace given' });
  });

  it.each<[string, (s: Statement) => void, RegExp]>([
    ['a refuted verdict, signed', (s) => void (s.predicate['verdict'] = 'refuted'), /ERR_ATTESTATION_MALFORMED: the predicate's verdict is "refuted"/],
    ['a predicate type that is not a Warden claim', (s) => void (s.predicateType = 'https://slsa.dev/provenance/v1'), /ERR_ATTESTATION_MALFORMED: predicate type/],
    ['a run subject for another run', (s) => void (s.subject[1] = jsonSubject('workflow:wf-1', { workflowId: 'wf-1', runId: 'run-2' })), /ERR_ATTESTATION_SUBJECT: subject workflow:wf-1 does not match: the digest/],
    ['a run subject naming another workflow than the predicate', (s) => void (s.subject[1] = jsonSubject('workflow:wf-2', { workflowId: 'wf-2', runId: 'run-1' })), /the predicate names another run/],
    ['a file that changed', (s) => void (s.subject[0] = { name: 'file:report.md', digest: { sha256: sha256Hex('other') } }), new RegExp(`subject file:report\\.md does not match: \\S+/report\\.md now hashes to ${sha256Hex('report')}, not the attested ${sha256Hex('other')}`)],
    ['a file that is gone', (s) => void (s.subject[0] = { name: 'file:gone.md', digest: { sha256: sha256Hex('report') } }), /subject file:gone\.md is missing: \S+\/gone\.md: ERR_PATH_NOT_FOUND/],
    ['a path out of the workspace', (s) => void (s.subject[0] = { name: 'file:../secret.txt', digest: { sha256: sha256Hex('report') } }), /subject file:\.\.\/secret\.txt cannot be read/],
    ['a link out of the workspace', (s) => void (s.subject[0] = { name: 'file:link.md', digest: { sha256: sha256Hex('report') } }), /subject file:link\.md cannot be read/],
  ])('fails for %s', async (_name, change, problem) => {
    const result = await check(change);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(problem);
  });

  it.each<[string, string, boolean]>([
    ['the task itself', 'wf-1', true],
    ['another task', 'wf-2', false],
    ['a task whose id the run id merely starts with', 'wf', false],
  ])('with a task given, passes only an attestation about it (%s)', async (_name, task, ok) => {
    const envelope = await signStatement(statement(), signer);
    const result = verifyClaimAttestation(envelope, jwks, { task });
    expect(result.ok).toBe(ok);
    if (!ok) expect(result.problems.join('\n')).toMatch(/ERR_ATTESTATION_SUBJECT: the attestation is about run wf-1, not task/);
  });

  it("with a task given, passes a sub-agent's attestation of that task", async () => {
    const sub = { workflowId: 'wf-1/helper-0', runId: 'run-9' };
    const envelope = await signStatement(statement((s) => {
      s.subject[1] = jsonSubject('workflow:wf-1/helper-0', sub);
      s.predicate['run'] = { ...sub, task: { workflowId: 'wf-1', runId: 'run-1' } };
    }), signer);
    expect(verifyClaimAttestation(envelope, jwks, { task: 'wf-1' }).ok).toBe(true);
  });

  it('with a task given, does not take a workflow id that starts with the task id for the task', async () => {
    // Anyone may start a task under the id `wf-1/helper-0`: only the signed tree says whose it is.
    const lookalike = { workflowId: 'wf-1/helper-0', runId: 'run-9' };
    const envelope = await signStatement(statement((s) => {
      s.subject[1] = jsonSubject('workflow:wf-1/helper-0', lookalike);
      s.predicate['run'] = { ...lookalike, task: { workflowId: 'wf-1/helper-0', runId: 'run-9' } };
    }), signer);
    expect(verifyClaimAttestation(envelope, jwks, { task: 'wf-1' }).problems).toEqual([expect.stringMatching(/^ERR_ATTESTATION_SUBJECT: the attestation is about task wf-1\/helper-0, not task wf-1/)]);
    // An attestation naming no tree passes only for its own run.
    const legacy = await signStatement(statement((s) => {
      s.subject[1] = jsonSubject('workflow:wf-1/helper-0', lookalike);
      s.predicate['run'] = lookalike;
    }), signer);
    expect(verifyClaimAttestation(legacy, jwks, { task: 'wf-1' }).ok).toBe(false);
    expect(verifyClaimAttestation(legacy, jwks, { task: 'wf-1/helper-0' }).ok).toBe(true);
  });

  it('reports a bad signature as a problem, never throwing', async () => {
    const other = byteSignerFromKey(generateKeyPairSync('ed25519').privateKey, 'k1');
    const result = verifyClaimAttestation(await signStatement(statement(), other), jwks);
    expect(result).toMatchObject({ ok: false, subjects: [], problems: [expect.stringMatching(/^ERR_ATTESTATION_SIGNATURE/)] });
    expect(verifyClaimAttestation('not an envelope', jwks).problems[0]).toMatch(/^ERR_ATTESTATION_MALFORMED/);
  });
});
