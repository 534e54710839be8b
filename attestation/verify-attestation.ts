/**
 * Offline verification of a claim attestation (what `warden attest verify` runs): the DSSE
 * signature with a key of the published JWKS only, the Statement's shape and predicate type, that
 * it attests a verified claim, that its run subject is the digest of the run its predicate names,
 * and, given the workspace, that every `file:<path>` subject still hashes to its digest.
 *
 * Invariant: nothing in the envelope is trusted before its signature checked out with a key the
 * caller gave; a subject that cannot be re-checked is reported as such, never as matching.
 */
import { join } from 'node:path';
import { canonicalBytes } from '../custody/canonical-json';
import { AttestationError } from '../errors';
import type { Jwks } from '../identity/claims';
import { readConfinedFileBytes } from '../sandbox/capabilities/fs-capability';
import { ClaimVerdictSchema } from './claim-schema';
import { openStatement, PREDICATE_BASE, sha256Hex, type Statement } from './in-toto-statement';

/**
 * `missing`: no file at the attested path; `unreadable`: something is there (or may be) that
 * cannot be read (permission denied on it or a folder above it, not a regular file, a link out of
 * the workspace...): told apart, since the remedy differs (restore the file, or fix its access).
 */
export type SubjectStatus = 'matched' | 'changed' | 'missing' | 'unreadable' | 'not-checked';

export interface SubjectCheck {
  name: string;
  status: SubjectStatus;
  detail: string;
}

export interface AttestationCheck {
  ok: boolean;
  /** Present once the signature verified. */
  statement?: Statement;
  keyids: string[];
  subjects: SubjectCheck[];
  /** What failed, with its error code first; empty when `ok`. */
  problems: string[];
}

export interface VerifyAttestationOptions {
  /** The workspace the `file:` subjects are relative to; without it they are `not-checked`. */
  workspace?: string;
  /**
   * The task the attestation must be about: its `workflow:` subject names this workflow or one of
   * its sub-agents (the task tree the signed predicate names). Without it any run signed by the JWKS passes.
   */
  task?: string;
}

const CLAIM_PREDICATE = new RegExp(`^${PREDICATE_BASE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/claim/[a-z][a-z0-9.]*/v1$`);

/** Checks one claim attestation envelope; never throws for the envelope's sake. */
export function verifyClaimAttestation(envelope: unknown, jwks: Jwks, options: VerifyAttestationOptions = {}): AttestationCheck {
  let opened: ReturnType<typeof openStatement>;
  try {
    opened = openStatement(envelope, jwks);
  } catch (error) {
    if (error instanceof AttestationError) return { ok: false, keyids: [], subjects: [], problems: [`${error.code}: ${error.message}`] };
    throw error;
  }
  const { statement, keyids } = opened;
  const problems: string[] = [];
  if (!CLAIM_PREDICATE.test(statement.predicateType)) problems.push(`ERR_ATTESTATION_MALFORMED: predicate type ${statement.predicateType} is not a Warden claim verification`);
  const predicate = statement.predicate as { verdict?: unknown; run?: { workflowId?: unknown; runId?: unknown } };
  const verdict = ClaimVerdictSchema.safeParse(predicate.verdict);
  if (!verdict.success || verdict.data !== 'verified') problems.push(`ERR_ATTESTATION_MALFORMED: the predicate's verdict is ${JSON.stringify(predicate.verdict)}, and Warden signs only verified claims`);
  const subjects = statement.subject.map((subject): SubjectCheck => {
    const digest = subject.digest['sha256'];
    if (subject.name.startsWith('workflow:')) {
      const run = predicate.run;
      if (typeof run?.workflowId !== 'string' || typeof run.runId !== 'string' || `workflow:${run.workflowId}` !== subject.name) {
        return { name: subject.name, status: 'changed', detail: 'the predicate names another run' };
      }
      const expected = sha256Hex(canonicalBytes({ workflowId: run.workflowId, runId: run.runId }));
      return expected === digest ? { name: subject.name, status: 'matched', detail: `run ${run.runId}` } : { name: subject.name, status: 'changed', detail: 'the digest is not that of the run the predicate names' };
    }
    if (subject.name.startsWith('file:')) {
      const path = subject.name.slice('file:'.length);
      if (options.workspace === undefined) return { name: subject.name, status: 'not-checked', detail: 'no --workspace given' };
      let bytes: Buffer;
      try {
        bytes = readConfinedFileBytes({ root: options.workspace, read: true, write: false, list: false }, path, Number.MAX_SAFE_INTEGER);
      } catch (error) {
        const failure = subjectReadFailure(error);
        return { name: subject.name, status: failure.status, detail: `${join(options.workspace, path)}: ${failure.why}` };
      }
      const actual = sha256Hex(bytes);
      return actual === digest ? { name: subject.name, status: 'matched', detail: `sha256 ${actual}` } : { name: subject.name, status: 'changed', detail: `${join(options.workspace, path)} now hashes to ${actual}, not the attested ${digest ?? '(no sha256)'}` };
    }
    // custody:<seq>: checked against the ledger's proofs (a task receipt carries them).
    return { name: subject.name, status: 'not-checked', detail: 'checked with a task receipt (`warden receipt verify`)' };
  });
  if (options.task !== undefined) {
    // The signed predicate names the task tree; a workflow id that merely starts with `<task>/` proves
    // nothing (anyone may start a task under such an id). Older attestations name no tree: their run must be the task's.
    const tree = (predicate.run as { task?: { workflowId?: unknown } } | undefined)?.task?.workflowId;
    const runs = statement.subject.filter((s) => s.name.startsWith('workflow:')).map((s) => s.name.slice('workflow:'.length));
    const about = typeof tree === 'string' ? tree : runs.find((id) => id === options.task);
    if (about !== options.task) {
      problems.push(`ERR_ATTESTATION_SUBJECT: the attestation is about ${typeof tree === 'string' ? `task ${tree}` : runs.length === 0 ? 'no run' : `run ${runs.join(', ')}`}, not task ${options.task}`);
    }
  }
  for (const s of subjects) {
    if (s.status === 'changed' || s.status === 'missing' || s.status === 'unreadable') {
      problems.push(`ERR_ATTESTATION_SUBJECT: subject ${s.name} ${s.status === 'missing' ? 'is missing' : s.status === 'unreadable' ? 'cannot be read' : 'does not match'}: ${s.detail}`);
    }
  }
  return { ok: problems.length === 0, statement, keyids, subjects, problems };
}

/** The errno a failed read carries: its own `code` (a Node error), or the one the fs capability kept in its details. */
function errnoOf(error: unknown): string | undefined {
  const own = (error as { code?: unknown } | null)?.code;
  if (typeof own === 'string' && /^E[A-Z]+$/.test(own)) return own;
  const kept = (error as { details?: { errno?: unknown } } | null)?.details?.errno;
  return typeof kept === 'string' ? kept : undefined;
}

/**
 * What a failed read of an attested file means: `missing` when nothing is at the path (ENOENT, a
 * component that is not a folder), `unreadable` otherwise, with why (permission denied on the
 * file or a folder above it: EACCES, EPERM; anything else in the capability's words).
 */
export function subjectReadFailure(error: unknown): { status: 'missing' | 'unreadable'; why: string } {
  const code = (error as { code?: unknown } | null)?.code;
  const errno = errnoOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ERR_PATH_NOT_FOUND' || errno === 'ENOENT' || errno === 'ENOTDIR') return { status: 'missing', why: `${typeof code === 'string' ? code : errno}: ${message}` };
  if (errno === 'EACCES' || errno === 'EPERM') return { status: 'unreadable', why: `permission denied (${errno}): this user cannot read the file or a folder above it (${message})` };
  return { status: 'unreadable', why: `${typeof code === 'string' ? code : 'ERR_FS_FAILED'}: ${message}` };
}
