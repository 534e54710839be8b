/**
 * Warden's own check of one claim, independent of the agent: against the committed workspace,
 * through the SQL broker read-only, over the network only to hosts the task grants, by re-running
 * tests in the OS sandbox, and against the steps recorded in history. What the check observed is
 * returned with the verdict, so a refutation says what was found instead.
 *
 * The verifier receives its means (readers, runners) from the caller: an activity with its own
 * credential; nothing here sees the agent's sandbox or its outputs.
 */
import { createHash } from 'node:crypto';
import { ClaimSchema, describeClaim, normalizeClaim, type ClaimInput, type ClaimVerdict, type StructuredClaim } from './claim-schema';
import { compileCountQuery } from './sql-count-query';
import { findToolCall } from './tool-called';
import type { TaskResult } from '../task/task-run';
import type { Subject } from './in-toto-statement';
import { cutText, textTail } from '../cut-text';

/** The means a verification may use; a missing one makes the claims that need it `unverified`. */
export interface ClaimVerifierMeans {
  /** Reads a committed workspace file (bytes), refusing paths outside the workspace. */
  readFile?: (path: string) => Promise<Buffer>;
  /** One read-only query through the broker: `SELECT count(*) AS n …`. */
  countRows?: (database: string, sql: string, params: Array<string | number | null>) => Promise<number>;
  /** An HTTP request under the task's host grants (the same rules as `http.fetch`). */
  httpStatus?: (url: string, method: 'GET' | 'HEAD') => Promise<number>;
  /** The task's declared test commands (`attestation.tests`): the only ones a `tests.pass` claim may name. */
  testCommands?: ReadonlyArray<{ command: string; args: readonly string[]; cwd?: string | undefined }>;
  /** Runs a test command in the OS sandbox on the committed workspace. */
  runTests?: (command: string, args: string[], cwd: string | undefined) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** A user-defined verifier run in a fresh sandbox; returns whether the claim holds and why. */
  runCustom?: (verifier: string, params: Record<string, unknown>) => Promise<{ holds: boolean; reason: string; observed?: unknown }>;
  /** The task tree as recorded (for `tool.called`). */
  recorded?: Pick<TaskResult, 'workflowId' | 'steps' | 'children'>;
}

export interface ClaimCheck {
  claim: StructuredClaim;
  /** The claim in words. */
  text: string;
  verdict: ClaimVerdict;
  reason: string;
  /** What the verifier saw (a digest, a count, a status, an exit code). */
  observed?: unknown;
  /** What the check was about, by digest (for the in-toto Statement). */
  subjects: Subject[];
}

const OUTPUT_TAIL = 2_000;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function unverified(claim: StructuredClaim, reason: string): ClaimCheck {
  return { claim, text: describeClaim(claim), verdict: 'unverified', reason, subjects: [] };
}

function decided(claim: StructuredClaim, holds: boolean, reason: string, observed: unknown, subjects: Subject[] = []): ClaimCheck {
  return { claim, text: describeClaim(claim), verdict: holds ? 'verified' : 'refuted', reason, observed, subjects };
}

function failureReason(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/**
 * Checks one claim. Never throws for the claim's sake: a check that cannot be made is
 * `unverified` with the reason (the verifier is missing, the file does not exist is a refutation).
 */
export async function verifyClaim(input: ClaimInput | unknown, means: ClaimVerifierMeans): Promise<ClaimCheck> {
  const parsed = ClaimSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const text = typeof input === 'string' ? input : cutText(JSON.stringify(input) ?? String(input), 200);
    return { claim: { kind: 'text', text }, text, verdict: 'unverified', reason: `ERR_CLAIM_INVALID: ${issue?.path.join('.') || '(claim)'}: ${issue?.message}`, subjects: [] };
  }
  const claim = normalizeClaim(parsed.data);
  try {
    switch (claim.kind) {
      case 'text':
        return unverified(claim, 'a claim in words: Warden has no way to check it (state it as a structured claim)');
      case 'file.sha256':
      case 'file.contains': {
        if (means.readFile === undefined) return unverified(claim, 'the task has no workspace to check files in');
        let bytes: Buffer;
        try {
          bytes = await means.readFile(claim.path);
        } catch (error) {
          // A file that is not there refutes the claim; one Warden may not or cannot read leaves it open.
          if ((error as { code?: unknown })?.code === 'ERR_PATH_NOT_FOUND') {
            return decided(claim, false, `${claim.path} does not exist in the committed workspace`, { exists: false });
          }
          return unverified(claim, `cannot read ${claim.path} in the committed workspace: ${failureReason(error)}`);
        }
        const digest = sha256(bytes);
        const subjects = [{ name: `file:${claim.path}`, digest: { sha256: digest } }];
        if (claim.kind === 'file.sha256') {
          const holds = digest === claim.sha256;
          return decided(claim, holds, holds ? `${claim.path} hashes to the claimed digest` : `${claim.path} hashes to ${digest}`, { sha256: digest }, subjects);
        }
        const holds = bytes.toString('utf8').includes(claim.text);
        return decided(claim, holds, holds ? `${claim.path} contains the text` : `${claim.path} does not contain the text`, { sha256: digest, bytes: bytes.length }, subjects);
      }
      case 'sql.count': {
        if (means.countRows === undefined) return unverified(claim, 'no database access for verification');
        const { sql, params } = compileCountQuery(claim.table, claim.where);
        const count = await means.countRows(claim.database, sql, params);
        return decided(claim, count === claim.equals, `${count} row(s) match in ${claim.database}.${claim.table}`, { count });
      }
      case 'http.status': {
        if (means.httpStatus === undefined) return unverified(claim, 'no network access for verification');
        const status = await means.httpStatus(claim.url, claim.method);
        return decided(claim, status === claim.status, `${claim.method} ${claim.url} answered ${status}`, { status });
      }
      case 'tool.called': {
        if (means.recorded === undefined) return unverified(claim, 'no recorded steps to check against');
        const match = findToolCall(means.recorded, claim.tool, claim.args);
        return match.at === undefined
          ? decided(claim, false, `no successful call of ${claim.tool} with those arguments in history (${match.callsOfTool} call(s) of the tool)`, match)
          : decided(claim, true, `called at ${match.at}`, match);
      }
      case 'tests.pass': {
        const declared = means.testCommands ?? [];
        if (declared.length === 0) return unverified(claim, 'the task declares no test command (attestation.tests): Warden does not run a command the claimant chose as "the tests"');
        const named = declared.some((t) => t.command === claim.command && (t.cwd ?? '.') === (claim.cwd ?? '.') && t.args.length === claim.args.length && t.args.every((a, i) => a === claim.args[i]));
        if (!named) return unverified(claim, `${[claim.command, ...claim.args].join(' ')} is not one of the task's test commands (attestation.tests)`);
        if (means.runTests === undefined) return unverified(claim, 'programs cannot be run for verification (no OS sandbox)');
        const run = await means.runTests(claim.command, claim.args, claim.cwd);
        const observed = { exitCode: run.exitCode, stdoutTail: textTail(run.stdout, OUTPUT_TAIL), stderrTail: textTail(run.stderr, OUTPUT_TAIL) };
        return decided(claim, run.exitCode === 0, `Warden re-ran the tests: exit code ${run.exitCode}`, observed);
      }
      case 'custom': {
        if (means.runCustom === undefined) return unverified(claim, `no verifier "${claim.verifier}" is available`);
        const outcome = await means.runCustom(claim.verifier, claim.params);
        return decided(claim, outcome.holds, outcome.reason, outcome.observed ?? null);
      }
    }
  } catch (error) {
    return unverified(claim, `the check could not be made: ${failureReason(error)}`);
  }
}
