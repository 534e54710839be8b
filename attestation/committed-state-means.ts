/**
 * The means a claim's verifier checks with, all against the committed state and none through
 * anything the agent touched: the workspace read through the fs capability's confined open (no
 * overlay: what the commit made real), databases through the SQL broker's read-only query path,
 * HTTP through the `http.fetch` capability (same host rules, private-address refusal and pinned
 * DNS), tests re-run as a fresh program in the OS sandbox on the committed workspace behind a
 * throwaway overlay (its writes are discarded, it has no network), and a user verifier in a fresh
 * isolate of the sandbox host.
 *
 * Invariant: every means first checks that the verifier's verified credential names the exact
 * resource (`allow`), so a means can only ever do what the claim's access allowed.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { wellFormedJson } from '../custody/well-formed-json';
import { CredentialError, SandboxError } from '../errors';
import { fsScope, httpScope, sqlScope } from '../identity/call-scope';
import { grantedPrograms, resolveCommand, MAX_PROCESS_OUTPUT_BYTES } from '../executors/process-executor';
import { readConfinedFileBytes } from '../sandbox/capabilities/fs-capability';
import { createHttpCapability } from '../sandbox/capabilities/http-capability';
import { createSqlCapability } from '../sandbox/capabilities/sql-capability';
import type { SandboxClient } from '../sandbox/sandbox-client';
import { runSandboxed } from '../sandbox/os/run-sandboxed';
import { PROCESS_LIMIT_DEFAULTS } from '../tools/process-tools';
import { validateToolInput } from '../tools/tool-input-validator';
import type { Task } from '../task/task-schema';
import type { UserVerifier } from './attestation-config';
import type { ClaimVerifierMeans } from './verify-claim';
import type { VerifierAccess } from './verifier-access';
import { cutText, textTail } from '../cut-text';
import { longTimeoutSignal } from '../long-timer';

/** Largest committed file a claim is checked against (larger: `unverified`). */
export const MAX_CHECKED_FILE_BYTES = 64 * 1024 * 1024;
/** Most bytes a user verifier may return. */
const MAX_VERIFIER_OUTPUT_BYTES = 64 * 1024;

export interface CommittedStateOptions {
  task: Task;
  access: VerifierAccess;
  /** The verifier credential's scope, as verified (what `allow` checks against). */
  verifiedScope: readonly string[];
  /** The credential itself, for a user verifier (the sandbox host verifies it again). */
  credentialToken?: string;
  /** Real path of the workspace, when the task has one. */
  workspaceRoot: string | undefined;
  /** Warden's folders and key files: never read, whatever path leads there. */
  protectedPaths: string[];
  protectedFiles: string[];
  /** Where throwaway overlays of test re-runs live (under the state folder). */
  scratchDir: string;
  /** Wall time of one check, ms. */
  timeoutMs: number;
  sandbox?: SandboxClient;
}

function allowFor(verifiedScope: readonly string[]) {
  return (scope: string): void => {
    if (!verifiedScope.includes(scope)) throw new CredentialError('ERR_CREDENTIAL_SCOPE', `the verifier's credential does not cover ${JSON.stringify(scope)}`);
  };
}

/** The means for one claim's check, each bound to its credential's scope. */
export function committedStateMeans(options: CommittedStateOptions): ClaimVerifierMeans {
  const { task, workspaceRoot } = options;
  const allow = allowFor(options.verifiedScope);
  const means: ClaimVerifierMeans = {};
  if (workspaceRoot !== undefined) {
    means.readFile = async (relativePath) => {
      allow(fsScope('read', relativePath));
      return readConfinedFileBytes(
        { root: workspaceRoot, read: true, write: false, list: false, protectedPaths: options.protectedPaths, protectedFiles: options.protectedFiles },
        relativePath,
        MAX_CHECKED_FILE_BYTES,
      );
    };
  }
  means.countRows = async (database, sql, params) => {
    allow(sqlScope('query', database));
    const file = task.resources.databases[database];
    if (file === undefined) throw new CredentialError('ERR_CREDENTIAL_SCOPE', `database "${database}" is not declared by the task`);
    const rows = createSqlCapability({ databases: { [database]: file }, query: true, exec: false }).query(database, sql, params);
    const n = rows[0]?.['n'];
    if (typeof n !== 'number') throw new TypeError('the count query returned no count');
    return n;
  };
  means.httpStatus = async (url, method) => {
    allow(httpScope(method, url));
    const http = createHttpCapability({ allowedHosts: options.access.grants.hosts }, { signal: longTimeoutSignal(options.timeoutMs) });
    return (await http.fetch(url, { method })).status;
  };
  means.runTests = async (command, args, cwd) => {
    allow(`proc.run:${command}`);
    const executable = resolveCommand(command);
    const overlayDir = path.join(options.scratchDir, randomUUID());
    fs.mkdirSync(overlayDir, { recursive: true, mode: 0o700 });
    try {
      const run = await runSandboxed(
        {
          command: executable,
          args,
          programs: grantedPrograms(task),
          cwd: cwd ?? '.',
          // A fresh overlay: the tests see exactly the committed files, and what they write is thrown away.
          ...(workspaceRoot === undefined ? {} : { workspace: { mode: 'overlay' as const, root: workspaceRoot, overlayDir } }),
          allowedHosts: [],
          limits: {
            wallTimeMs: options.timeoutMs,
            cpuTimeMs: options.timeoutMs,
            memoryMb: task.limits.processMemoryMb ?? PROCESS_LIMIT_DEFAULTS.memoryMb,
            maxProcesses: task.limits.processMaxProcesses ?? PROCESS_LIMIT_DEFAULTS.maxProcesses,
          },
        },
        { maxOutputBytes: MAX_PROCESS_OUTPUT_BYTES },
      );
      if (run.reason === 'setup-failed') throw new SandboxError('ERR_OS_SANDBOX_UNAVAILABLE', `the OS sandbox could not start ${command}: ${textTail(run.stderr.trim(), 500)}`);
      // A run Warden stopped (time, memory) did not pass: its exit code says nothing.
      const exitCode = run.reason === 'exited' && run.exitCode !== null ? run.exitCode : -1;
      return { exitCode, stdout: run.stdout, stderr: run.reason === 'exited' ? run.stderr : `${run.stderr}\n[warden: stopped: ${run.reason}]` };
    } finally {
      fs.rmSync(overlayDir, { recursive: true, force: true });
    }
  };
  const sandbox = options.sandbox;
  const capabilities = options.access.capabilities;
  if (sandbox !== undefined && capabilities !== undefined) {
    means.runCustom = async (name, params) => {
      allow(`${options.access.tool}:invoke`);
      const verifier: UserVerifier | undefined = task.attestation?.verifiers[name];
      if (verifier === undefined) throw new CredentialError('ERR_CREDENTIAL_SCOPE', `no verifier "${name}" is declared`);
      const problems = validateToolInput(verifier.params, params);
      if (problems.length > 0) {
        throw Object.assign(new Error(`params do not match verifier "${name}": ${problems.map((p) => `${p.path || '(params)'} ${p.message}`).join('; ')}`), { code: 'ERR_CLAIM_INVALID' });
      }
      const result = await sandbox.run({
        toolName: options.access.tool,
        source: verifier.source,
        input: params,
        limits: { timeoutMs: options.timeoutMs, memoryMb: verifier.memoryMb ?? task.limits.toolMemoryMb, maxOutputBytes: MAX_VERIFIER_OUTPUT_BYTES },
        capabilities,
        ...(options.credentialToken === undefined ? {} : { credential: options.credentialToken }),
      });
      if (!result.ok) throw Object.assign(new Error(result.error.message), { code: result.error.code });
      const output = result.output as { holds?: unknown; reason?: unknown; observed?: unknown } | null;
      if (typeof output !== 'object' || output === null || typeof output.holds !== 'boolean' || typeof output.reason !== 'string') {
        throw Object.assign(new Error(`verifier "${name}" must return { holds: boolean, reason: string, observed? }`), { code: 'ERR_TOOL_OUTPUT_NOT_JSON' });
      }
      // Well-formed, as every tool output (custody/well-formed-json.ts): the verdict is signed as canonical JSON.
      return wellFormedJson({ holds: output.holds, reason: cutText(output.reason, 2000), ...(output.observed === undefined ? {} : { observed: output.observed }) }).value;
    };
  }
  return means;
}
