/**
 * `warden credentials verify <token>`: explains a Warden token (per-call credential or task
 * grant) and says whether it verifies now, and if not, which check failed (code and message).
 * It never consumes a credential: the replay store is only read.
 */
import { parseCommandArgs } from '../parse-command-args';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CredentialError, DelegationError, WardenError } from '../../errors';
import { formatActChain, type ActClaim } from '../../identity/agent-identity';
import { CALL_CREDENTIAL_TYP, GRANT_TYP } from '../../identity/claims';
import { openCredentialStores, type CredentialStores } from '../../identity/credential-stores';
import { createSqlCredentialStores } from '../../identity/sql-credential-stores';
import { openStateStore, usesSharedDatabase } from '../../state/state-store';
import { KEYS_DIR, readJwksFile } from '../../identity/keystore';
import { verifyTaskGrant } from '../../identity/task-grant';
import { decodeTokenUnverified, VerificationKeySet } from '../../identity/token-verification';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { terminalJson, terminalLine } from '../../terminal-text';

export const CREDENTIALS_USAGE = `usage: warden credentials verify <token> [--tool <name>] [--scope <scope>]... [--json]

  verify   explain a credential or task grant and check it against this state folder's keys,
           revocations and used ids (without using it up); exit 0 when valid, 1 when not
  --tool   the tool it must be for (default: the one its audience names)
  --scope  a resource the call needs, e.g. fs.read:notes.txt (repeatable)
  --json   one JSON object: { valid, code?, message?, kind, header, claims }`;

interface Verdict {
  valid: boolean;
  code?: string;
  message?: string;
  notes: string[];
}

export async function credentialsCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('credentials', CREDENTIALS_USAGE, argv, io, {
    tool: { type: 'string' },
    scope: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [action, token, ...extra] = args.positionals;
  if (action !== 'verify' || token === undefined || extra.length > 0) {
    io.stderr(`warden credentials: expected verify <token>\n${CREDENTIALS_USAGE}\n`);
    return EXIT.usage;
  }
  // An empty argument is no token to verify: bad usage (exit 2), as an empty option value is.
  if (token.trim() === '') {
    io.stderr(`warden credentials: the token is empty (expected verify <token>)\n${CREDENTIALS_USAGE}\n`);
    return EXIT.usage;
  }
  const json = args.values.json === true;
  const stateDir = stateDirOf(io.env);
  const now = Date.now();

  let decoded;
  try {
    decoded = decodeTokenUnverified(token);
  } catch (error) {
    if (!(error instanceof CredentialError)) throw error;
    report(io, json, { valid: false, code: error.code, message: error.message, notes: [] }, undefined, undefined, now);
    return EXIT.failed;
  }
  const { header, payload } = decoded;
  const kind = header['typ'] === GRANT_TYP ? 'task grant' : header['typ'] === CALL_CREDENTIAL_TYP ? 'call credential' : 'unknown token';

  let verdict: Verdict;
  if (!existsSync(join(stateDir, KEYS_DIR, 'jwks.json'))) {
    verdict = { valid: false, code: 'ERR_KEYSTORE_INVALID', message: `no Warden keys under ${stateDir} (set WARDEN_STATE_DIR)`, notes: [] };
  } else {
    const keys = new VerificationKeySet(() => readJwksFile(stateDir));
    // Revocations and used ids live where the workers keep them: the shared database when
    // WARDEN_DATABASE_URL is set (a grant revoked on any worker), else the state folder.
    let stores: CredentialStores;
    if (usesSharedDatabase(io.env)) {
      const state = await openStateStore({ stateDir, env: io.env });
      stores = createSqlCredentialStores({ db: state.db, closeDatabase: true });
    } else {
      stores = openCredentialStores({ stateDir });
    }
    try {
      verdict = kind === 'task grant' ? await verifyGrant(token, keys, stores.revocation) : await verifyCall(token, payload, args.values, keys, stores);
    } catch (error) {
      if (!(error instanceof CredentialError || error instanceof DelegationError || (error instanceof WardenError && error.code.startsWith('ERR_KEYSTORE')))) throw error;
      verdict = { valid: false, code: error.code, message: error.message, notes: [] };
    } finally {
      await stores.close();
    }
  }
  report(io, json, verdict, kind, decoded, now);
  return verdict.valid ? EXIT.ok : EXIT.failed;
}

async function verifyGrant(token: string, keys: VerificationKeySet, revocation: CredentialStores['revocation']): Promise<Verdict> {
  const grant = await verifyTaskGrant(token, keys);
  const revoked = await revocation.isRevoked([...grant.claims.lineage, grant.id]);
  if (revoked !== undefined) {
    return { valid: false, code: 'ERR_CREDENTIAL_REVOKED', message: `grant ${revoked.grantId} was ended at ${new Date(revoked.revokedAt).toISOString()}: ${revoked.reason}`, notes: [] };
  }
  return { valid: true, notes: ['a task grant is Warden\'s own record; tools accept only call credentials'] };
}

async function verifyCall(
  token: string,
  payload: Record<string, unknown>,
  options: { tool?: string | undefined; scope?: string[] | undefined },
  keys: VerificationKeySet,
  stores: CredentialStores,
): Promise<Verdict> {
  const notes: string[] = [];
  let tool = options.tool;
  if (tool === undefined) {
    const aud = payload['aud'];
    tool = typeof aud === 'string' && aud.startsWith('tool:') ? aud.slice('tool:'.length) : '(none)';
    notes.push(`no --tool given: checked against the tool its own audience names (${tool})`);
  }
  if (options.scope === undefined) notes.push('no --scope given: resource coverage not checked');
  const verifier = createCredentialVerifier({ keys, replayStore: stores.replay, revocationStore: stores.revocation });
  await verifier.verify(token, { tool, requiredScope: options.scope ?? [], consume: false });
  return { valid: true, notes };
}

function report(io: CliIo, json: boolean, verdict: Verdict, kind: string | undefined, decoded: { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined, now: number): void {
  if (json) {
    const { notes, ...rest } = verdict;
    io.stdout(`${terminalJson({ ...rest, notes, kind: kind ?? null, header: decoded?.header ?? null, claims: decoded?.payload ?? null })}\n`);
    return;
  }
  const lines: string[] = [];
  if (decoded !== undefined) {
    const { header, payload: p } = decoded;
    lines.push(`${kind} (claims as the token states them; verdict below)`);
    lines.push(`  header     alg ${String(header['alg'])}, kid ${String(header['kid'] ?? '(none)')}, typ ${String(header['typ'] ?? '(none)')}`);
    const extraHeaders = Object.keys(header).filter((k) => !['alg', 'kid', 'typ'].includes(k));
    if (extraHeaders.length > 0) lines.push(`             also: ${extraHeaders.join(', ')}`);
    lines.push(`  issuer     ${String(p['iss'] ?? '(none)')}`);
    lines.push(`  subject    ${String(p['sub'] ?? '(none)')}`);
    lines.push(`  audience   ${JSON.stringify(p['aud'] ?? null)}`);
    lines.push(`  id (jti)   ${String(p['jti'] ?? '(none)')}`);
    if (Array.isArray(p['scope'])) lines.push(`  scope      ${p['scope'].length === 0 ? '(none)' : p['scope'].map(String).join(', ')}`);
    if (p['grants'] !== undefined) lines.push(`  grants     ${JSON.stringify(p['grants'])}`);
    if (typeof p['grant'] === 'string') lines.push(`  grant      ${p['grant']}`);
    if (Array.isArray(p['lineage']) && p['lineage'].length > 0) lines.push(`  ancestors  ${p['lineage'].map(String).join(' → ')}`);
    if (typeof p['depth'] === 'number') lines.push(`  depth      ${p['depth']}`);
    const chain = actChain(p['act']);
    if (chain !== undefined) lines.push(`  act chain  ${chain}`);
    lines.push(`  issued     ${when(p['iat'], now)}`);
    if (p['nbf'] !== p['iat']) lines.push(`  not before ${when(p['nbf'], now)}`);
    lines.push(`  expires    ${when(p['exp'], now)}`);
  }
  for (const note of verdict.notes) lines.push(`  note: ${note}`);
  lines.push(verdict.valid ? 'VALID' : `INVALID ${verdict.code}: ${verdict.message}`);
  // Every line holds text whoever made the token wrote: one line each, no control of theirs.
  io.stdout(`${lines.map(terminalLine).join('\n')}\n`);
}

function actChain(act: unknown): string | undefined {
  try {
    return act === undefined ? undefined : formatActChain(act as ActClaim);
  } catch {
    return '(malformed)';
  }
}

/** "2026-11-25T10:00:00.000Z (in 48 s)" / "(3 min ago)". */
export function when(numericDate: unknown, now: number): string {
  if (typeof numericDate !== 'number' || !Number.isFinite(numericDate)) return '(none)';
  const at = numericDate * 1000;
  const delta = at - now;
  const span = humanSpan(Math.abs(delta));
  return `${new Date(at).toISOString()} (${delta >= 0 ? `in ${span}` : `${span} ago`})`;
}

function humanSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}
