/**
 * The sandbox host's gate: no tool code runs unless the call presents a valid per-call
 * credential for exactly this tool and these resources, unused, of a task that has not ended.
 *
 * Invariant: the host holds only public keys (the JWKS file) and the shared replay/revocation
 * stores (the state folder's SQLite file, or the shared PostgreSQL database when workers share
 * one, so a task ended on any worker stops its credentials here); it can verify credentials but
 * never mint them. It trusts only its own worker's keys: every call credential it sees was
 * minted by that worker.
 */
import { isErrorCode, type ErrorCode } from '../errors';
import { createCredentialVerifier, type CredentialVerifier } from '../identity/verify-credential';
import { openCredentialStores, type CredentialStores } from '../identity/credential-stores';
import { readJwksFile, readJwksFileAt } from '../identity/keystore';
import { createSqlCredentialStores } from '../identity/sql-credential-stores';
import { openPostgresDatabase } from '../state/postgres-database';
import { requiredScopeOf } from '../tools/call-scope';
import { getBuiltinTool } from '../tools/builtin-tools';
import { SANDBOX_PROBE_CALL, type SandboxRunRequest } from './sandbox-messages';

export type GateResult = { ok: true } | { ok: false; code: ErrorCode; message: string };

export interface CredentialGate {
  check(request: SandboxRunRequest): Promise<GateResult>;
  /** Closes the replay/revocation stores (a PostgreSQL pool would keep the host alive). */
  close(): Promise<void>;
}

export interface CredentialGateOptions {
  /** The shared state database (PostgreSQL) holding the revocation and replay stores. */
  databaseUrl?: string;
  /** Verify with this public JWKS file instead of `<stateDir>/keys/jwks.json`. */
  jwksFile?: string;
}

export function createCredentialGate(stateDir: string, options: CredentialGateOptions = {}): CredentialGate {
  const stores: CredentialStores =
    options.databaseUrl === undefined
      ? openCredentialStores({ stateDir })
      : createSqlCredentialStores({ db: openPostgresDatabase(options.databaseUrl, { maxConnections: 4, applicationName: 'warden-sandbox-host' }), closeDatabase: true });
  const jwksFile = options.jwksFile;
  const verifier: CredentialVerifier = createCredentialVerifier({
    keys: () => (jwksFile === undefined ? readJwksFile(stateDir) : readJwksFileAt(jwksFile)),
    replayStore: stores.replay,
    revocationStore: stores.revocation,
  });
  return {
    async check(request) {
      if (isProbe(request)) return { ok: true };
      if (request.credential === undefined) {
        return { ok: false, code: 'ERR_CREDENTIAL_MALFORMED', message: 'the call presents no credential' };
      }
      try {
        const args = typeof request.input === 'object' && request.input !== null ? (request.input as Record<string, unknown>) : {};
        // A built-in's name runs only the built-in's own source.
        const builtin = getBuiltinTool(request.toolName);
        if (builtin !== undefined && request.source !== builtin.executor.source) {
          return { ok: false, code: 'ERR_CREDENTIAL_SCOPE', message: `a call named ${request.toolName} must run the built-in's source` };
        }
        await verifier.verify(request.credential, { tool: request.toolName, requiredScope: requiredScopeOf(request.toolName, args, request.capabilities) });
        return { ok: true };
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        return { ok: false, code: isErrorCode(code) ? code : 'ERR_CREDENTIAL_MALFORMED', message: (error as Error).message };
      }
    },
    async close() {
      await stores.close();
    },
  };
}

function isProbe(request: SandboxRunRequest): boolean {
  const probe = SANDBOX_PROBE_CALL;
  return (
    request.toolName === probe.toolName &&
    request.source === probe.source &&
    request.input === null &&
    Object.keys(request.capabilities).length === 0 &&
    request.limits.memoryMb <= probe.limits.memoryMb &&
    request.limits.timeoutMs <= probe.limits.timeoutMs
  );
}
