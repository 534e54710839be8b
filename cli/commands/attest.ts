/**
 * `warden attest verify <file>`: checks claim attestations offline, with only a published JWKS
 * (attestation/verify-attestation.ts). Reading files is all it does: no server, and nothing
 * written (without --jwks it reads the keys the state folder holds, and creates none).
 */
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { PublishedJwksSchema, readPublishedJwks } from '../../attestation/published-jwks';
import { verifyClaimAttestation, type AttestationCheck } from '../../attestation/verify-attestation';
import { WardenError } from '../../errors';
import { readUserFileSync, UserFileError } from '../../regular-file';
import { jsonProblemText } from '../../json-syntax';
import type { Jwks } from '../../identity/claims';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { parseCommandArgs } from '../parse-command-args';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const ATTEST_USAGE = `usage: warden attest verify <file> [--jwks <file>] [--workspace <dir>] [--task <workflowId>] [--json]

  verify       checks claim attestations offline. <file> holds one DSSE envelope, a JSON array of
               them, or the output of \`warden run --json\` (every signed claim in it). Each must be
               signed by a key of --jwks (default: the keys this state folder already holds, as
               \`warden keys jwks\` prints them; read only, none is created), attest a verified
               claim, name the run it belongs to, and with --workspace every file it attests must
               still hash to the attested digest (a file that cannot be read, e.g. permission
               denied, is reported unreadable, apart from one that is missing).
               Exit 0 when all verify, 1 when one does not, 2 for bad usage, an unreadable file,
               or no key to verify against (no --jwks and no key here: the key id it names is said).
  --jwks       the published JWKS to trust (and nothing else)
  --workspace  folder the attested files are relative to (re-hashed; without it they are not checked)
  --task       the task each attestation must be about (its workflow or a sub-agent's); without it,
               any run signed by the JWKS passes
  --json       one JSON object per envelope checked, in an array`;

/** Reads a JSON file, or says (exit 2) why it cannot. */
export function readJsonFile(io: CliIo, command: string, file: string, what: string): unknown {
  let text: string;
  try {
    text = readUserFileSync(file, { what });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    io.stderr(`${terminalLine(`warden ${command}: ${error.code}: ${error.message}`)}\n`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    io.stderr(`${terminalLine(`warden ${command}: ${what} ${file} is not JSON (${jsonProblemText(text)})`)}\n`);
    return undefined;
  }
}

/**
 * The JWKS of `--jwks`, or the keys this state folder (its key file, its shared database) already
 * holds, read without creating any (a verification writes nothing); undefined (after saying why)
 * when unusable, or when there is no key at all: then the message names the key ids `signed` is
 * signed with and how to pass `--jwks`.
 */
export async function trustedJwks(io: CliIo, command: string, file: string | undefined, signed: unknown): Promise<Jwks | undefined> {
  if (file === undefined) {
    const { jwks, searched } = await readPublishedJwks(stateDirOf(io.env), io.env);
    if (jwks.keys.length > 0) return jwks;
    const kids = signingKeyIdsIn(signed);
    io.stderr(
      `${terminalLine(
        `warden ${command}: no key to verify against: it is signed by key ${kids.length === 0 ? '(none named)' : kids.join(', ')}, and there is no key in ${searched} (nothing was created there). ` +
          `Pass the signer's published keys with --jwks <file> (\`warden keys jwks > jwks.json\` on the deployment that signed it)`,
      )}\n`,
    );
    return undefined;
  }
  const json = readJsonFile(io, command, file, 'JWKS');
  if (json === undefined) return undefined;
  const parsed = PublishedJwksSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    io.stderr(`${terminalLine(`warden ${command}: ${file} is not a JWKS of Ed25519 / P-256 signing keys: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`)}\n`);
    return undefined;
  }
  return parsed.data;
}

/**
 * The key ids the DSSE envelopes in `value` name (`signatures[].keyid`), wherever they sit: one
 * envelope, an array, `warden run --json` output's claims, a receipt's statement and attestations.
 * Read before anything is verified: only to say which key a verifier needs.
 */
export function signingKeyIdsIn(value: unknown): string[] {
  const kids = new Set<string>();
  const walk = (node: unknown, depth: number) => {
    if (depth > 6 || typeof node !== 'object' || node === null || kids.size >= 20) return;
    if (Array.isArray(node)) {
      for (const item of node.slice(0, 1000)) walk(item, depth + 1);
      return;
    }
    const object = node as Record<string, unknown>;
    if (typeof object['payload'] === 'string' && Array.isArray(object['signatures'])) {
      for (const signature of object['signatures']) {
        const kid = (signature as { keyid?: unknown } | null)?.keyid;
        if (typeof kid === 'string' && kid !== '') kids.add(kid);
      }
      return;
    }
    for (const child of Object.values(object)) walk(child, depth + 1);
  };
  walk(value, 0);
  return [...kids];
}

/** The envelopes a file holds: one, an array, or the signed claims of a task result. */
function envelopesIn(json: unknown): { label: string; envelope: unknown }[] | undefined {
  if (Array.isArray(json)) return json.map((envelope, i) => ({ label: `[${i}]`, envelope }));
  if (typeof json !== 'object' || json === null) return undefined;
  const object = json as Record<string, unknown>;
  if ('payload' in object && 'signatures' in object) return [{ label: 'envelope', envelope: object }];
  if (Array.isArray(object['claims'])) {
    return (object['claims'] as { envelope?: unknown; text?: unknown; id?: unknown }[])
      .filter((c) => typeof c === 'object' && c !== null && c.envelope !== undefined)
      .map((c) => ({ label: typeof c.id === 'string' ? c.id : String(c.text), envelope: c.envelope }));
  }
  return undefined;
}

function describe(label: string, check: AttestationCheck): string {
  const predicate = check.statement?.predicate as { claim?: { kind?: string }; verifiedAt?: string } | undefined;
  const head = check.ok
    ? `OK      ${label}: ${predicate?.claim?.kind ?? '?'} verified at ${predicate?.verifiedAt ?? '?'}, signed by ${check.keyids.join(', ')}`
    : `FAILED  ${label}: ${check.problems.join('; ')}`;
  const subjects = check.subjects.map((s) => `        ${s.status.padEnd(11)} ${s.name}: ${s.detail}`);
  // The envelope is someone else's file: its text is made safe for a terminal line (../../terminal-text.ts).
  return [head, ...subjects].map(terminalLine).join('\n');
}

/** What is wrong with `path` as the folder the attested files are read from; undefined when it is one. */
function folderProblem(path: string): string | undefined {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `no such folder (${path})` : code === 'ENOTDIR' ? `a part of ${path} is not a folder` : code === 'EACCES' ? `${path} cannot be read (permission denied)` : `${path}: ${code ?? (error as Error).message}`;
  }
  if (!stat.isDirectory()) return `${path} is not a folder`;
  try {
    // Stat needs no permission on the folder itself; reading its files needs read and search.
    accessSync(path, constants.R_OK | constants.X_OK);
  } catch {
    return `${path} cannot be read (permission denied)`;
  }
  return undefined;
}

export async function attestCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('attest', ATTEST_USAGE, argv, io, {
    jwks: { type: 'string' },
    workspace: { type: 'string' },
    task: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [action, file, ...extra] = args.positionals;
  if (action !== 'verify' || file === undefined || extra.length > 0) {
    io.stderr(`warden attest: expected: verify <file>\n${ATTEST_USAGE}\n`);
    return EXIT.usage;
  }
  try {
    const json = readJsonFile(io, 'attest', file, 'file');
    if (json === undefined) return EXIT.usage;
    const envelopes = envelopesIn(json);
    if (envelopes === undefined) {
      io.stderr(`${terminalLine(`warden attest: ${file} holds no DSSE envelope (an envelope, an array of them, or \`warden run --json\` output)`)}\n`);
      return EXIT.usage;
    }
    if (envelopes.length === 0) {
      io.stderr(`${terminalLine(`warden attest: ${file} holds no signed claim (only verified claims are signed)`)}\n`);
      return EXIT.failed;
    }
    const jwks = await trustedJwks(io, 'attest', args.values.jwks, json);
    if (jwks === undefined) return EXIT.usage;
    const workspace = args.values.workspace === undefined ? undefined : resolve(args.values.workspace);
    // A folder that is not there would make every attested file "cannot be read": the wrong
    // finding (the attestation is fine; the argument is not), so it is a usage error instead.
    const workspaceProblem = workspace === undefined ? undefined : folderProblem(workspace);
    if (workspaceProblem !== undefined) {
      io.stderr(`${terminalLine(`warden attest: --workspace ${args.values.workspace}: ${workspaceProblem}`)}\n`);
      return EXIT.usage;
    }
    const checks = envelopes.map(({ label, envelope }) => ({ label, check: verifyClaimAttestation(envelope, jwks, { ...(workspace === undefined ? {} : { workspace }), ...(args.values.task === undefined ? {} : { task: args.values.task }) }) }));
    // The default JWKS is this state folder's: a claim signed elsewhere (another deployment, a
    // WARDEN_SIGNING_KEY_FILE) needs the signer's JWKS, which the bare refusal does not say.
    if (args.values.jwks === undefined && checks.some(({ check }) => check.problems.some((p) => p.startsWith('ERR_ATTESTATION_KEY_UNKNOWN')))) {
      io.stderr(`${terminalLine(`warden attest: note: checked against the keys of the state folder ${stateDirOf(io.env)}; a claim signed by another deployment or a WARDEN_SIGNING_KEY_FILE needs --jwks <file> with its keys (\`warden keys jwks\` there)`)}\n`);
    }
    if (args.values.json) {
      io.stdout(`${terminalJson(checks.map(({ label, check }) => ({ label, ok: check.ok, keyids: check.keyids, problems: check.problems, subjects: check.subjects, statement: check.statement })), 2)}\n`);
    } else {
      io.stdout(`${checks.map(({ label, check }) => describe(label, check)).join('\n')}\n`);
    }
    return checks.every((c) => c.check.ok) ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden attest: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
