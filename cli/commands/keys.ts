/** `warden keys jwks|list|rotate`: the credential authority's signing keys (identity/keystore.ts). */
import { argumentCountText, parseCommandArgs } from '../parse-command-args';
import { WardenError } from '../../errors';
import { SIGNING_ALGS, SigningAlgSchema } from '../../identity/claims';
import { openKeystore } from '../../identity/keystore';
import { openKeySourceKeystore } from '../../identity/key-source-keystore';
import { signingKeyFileOf } from '../../identity/credential-authority';
import { publishedJwks } from '../../attestation/published-jwks';
import { stateDirOf } from '../../state-dir';
import { durationToMs } from '../../task/duration';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

/** How long a retired key keeps verifying unless `--verify-for` says otherwise: past any task deadline. */
export const DEFAULT_VERIFY_FOR = '24h';

export const KEYS_USAGE = `usage: warden keys jwks|list|rotate [--alg EdDSA|ES256] [--verify-for <duration>] [--json]

  jwks     print the public JWKS: the keys that verify Warden's tokens, claim attestations and
           task receipts (every worker's, with WARDEN_DATABASE_URL), and the custody ledger's
           keys (records and tree heads); what \`warden attest verify\` and
           \`warden receipt verify\` take as --jwks
  list     list the keys: id, algorithm, created, active or retired until when (with
           WARDEN_SIGNING_KEY_FILE set: that file's one key, which rotate does not touch)
  rotate   make a new key active; the old one keeps verifying for --verify-for
           (default ${DEFAULT_VERIFY_FOR}: longer than any task deadline), then is deleted
  --alg    algorithm of the new key (default: the active key's; the first key is EdDSA)
  --json   list and rotate as JSON (jwks always is)`;

export async function keysCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('keys', KEYS_USAGE, argv, io, {
    alg: { type: 'string' },
    'verify-for': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (typeof args === 'number') return args;
  const [action, ...extra] = args.positionals;
  if (action !== 'jwks' && action !== 'list' && action !== 'rotate') {
    io.stderr(`${terminalLine(`warden keys: expected jwks, list or rotate${action === undefined ? '' : ` (got "${action}")`}`)}\n${KEYS_USAGE}\n`);
    return EXIT.usage;
  }
  if (extra.length > 0) {
    io.stderr(`${terminalLine(`warden keys: ${argumentCountText(action, 0, extra)}`)}\n${KEYS_USAGE}\n`);
    return EXIT.usage;
  }
  const alg = args.values.alg === undefined ? undefined : SigningAlgSchema.safeParse(args.values.alg);
  if (alg !== undefined && !alg.success) {
    io.stderr(`${terminalLine(`warden keys: --alg must be one of ${SIGNING_ALGS.join(', ')}`)}\n`);
    return EXIT.usage;
  }
  if (action !== 'rotate' && (args.values.alg !== undefined || args.values['verify-for'] !== undefined)) {
    io.stderr(`warden keys: --alg and --verify-for apply to rotate only\n${KEYS_USAGE}\n`);
    return EXIT.usage;
  }
  let verifyForMs: number;
  try {
    verifyForMs = durationToMs(args.values['verify-for'] ?? DEFAULT_VERIFY_FOR);
  } catch {
    io.stderr(`warden keys: --verify-for must be a duration such as "30m" or "24h"\n`);
    return EXIT.usage;
  }

  try {
    if (action === 'jwks') {
      io.stdout(`${terminalJson(await publishedJwks(stateDirOf(io.env), io.env), 2)}\n`);
      return EXIT.ok;
    }
    // With a key file set, workers sign with it alone: the state folder's keys are not the ones in use.
    const keyFile = signingKeyFileOf(io.env);
    if (keyFile !== undefined && action === 'rotate') {
      io.stderr(`${terminalLine(`warden keys: rotate: the signing key comes from WARDEN_SIGNING_KEY_FILE (${keyFile}); rotate it by replacing that file on every worker (the state folder's keys are not used while it is set)`)}\n`);
      return EXIT.usage;
    }
    const keystore = keyFile === undefined ? await openKeystore({ stateDir: stateDirOf(io.env) }) : await openKeySourceKeystore(keyFile);
    if (action === 'rotate') {
      const previous = keystore.activeKid();
      const created = await keystore.rotate({ maxTokenLifetimeMs: verifyForMs, ...(alg?.success ? { alg: alg.data } : {}) });
      const retired = keystore.list().find((k) => k.kid === previous);
      if (args.values.json === true) {
        io.stdout(`${terminalJson({ active: { kid: created.kid, alg: created.alg }, retired: { kid: previous, verifyUntil: retired?.verifyUntil ?? null } }, 2)}\n`);
        return EXIT.ok;
      }
      io.stdout(`${[`active key: ${created.kid} (${created.alg})`, `retired:    ${previous}, verifies until ${retired?.verifyUntil ?? 'now'}`].map(terminalLine).join('\n')}\n`);
      return EXIT.ok;
    }
    const now = Date.now();
    if (args.values.json === true) {
      io.stdout(`${terminalJson(keystore.list().map((key) => ({ ...key, verifies: key.status === 'active' || (key.verifyUntil !== undefined && Date.parse(key.verifyUntil) > now) })), 2)}\n`);
      return EXIT.ok;
    }
    for (const key of keystore.list()) {
      const status =
        key.status === 'active'
          ? 'active'
          : key.verifyUntil !== undefined && Date.parse(key.verifyUntil) > now
            ? `retired ${key.retiredAt}, verifies until ${key.verifyUntil}`
            : `retired ${key.retiredAt}, no longer verifies (deleted on the next rotation)`;
      io.stdout(`${terminalLine(`${key.kid}  ${key.alg.padEnd(5)}  created ${key.createdAt}  ${status}`)}\n`);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden keys: ${error.code}: ${terminalLines(error.message)}\n`);
      // A key file that cannot be used is the operator's to fix: exit 2, as everywhere else.
      return exitCodeOfError(error, EXIT.failed);
    }
    throw error;
  }
}
