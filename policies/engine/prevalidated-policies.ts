/**
 * Cedar policies of the bundled packs, validated once at build time (`npm run build`), so a
 * process does not load Cedar's validator (about a second of cold WebAssembly) to validate text
 * that this build already validated: `warden run` checks a default task file without Cedar.
 *
 * Invariant: a policy is skipped only when its exact Cedar text was validated (strict mode)
 * against the exact schema text in use by the exact Cedar release in use (the dependency range
 * lets an install get another cedar-wasm than the build's, and validation rules change between
 * releases). The record is keyed by SHA-256 over schema and policy text, names the cedar-wasm
 * version (read from its package.json: no WebAssembly loaded) and lives in the build folder beside this module, written by the same build that wrote the
 * code: whoever can change it can change the code. Missing, unreadable, for another schema or
 * another Cedar release: no policy is skipped. Cedar validation is per policy (no cross-policy checks), so validating only
 * the policies not on record decides the same as validating all of them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where the build writes the record (beside the compiled module; absent when running the sources). */
export const PREVALIDATED_FILE = join(__dirname, 'cedar-prevalidated.json');

interface PrevalidatedRecord {
  schema: string;
  /** The cedar-wasm version that validated the policies. */
  cedar: string;
  policies: string[];
}

let cedarVersion: string | undefined | null = null;
/** The installed cedar-wasm's version, from its package.json (undefined when it cannot be read). */
export function installedCedarVersion(): string | undefined {
  if (cedarVersion !== null) return cedarVersion;
  try {
    // The package exports no ./package.json: found beside its Node entry point (nodejs/cedar_wasm.js).
    const manifest = JSON.parse(readFileSync(join(dirname(require.resolve('@cedar-policy/cedar-wasm/nodejs')), '..', 'package.json'), 'utf8')) as { version?: unknown };
    cedarVersion = typeof manifest.version === 'string' && manifest.version !== '' ? manifest.version : undefined;
  } catch {
    cedarVersion = undefined;
  }
  return cedarVersion;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/** The record key of one policy's Cedar text under `schema`. */
export function policyDigest(schema: string, policyText: string): string {
  return digest(`${digest(schema)}\0${policyText}`);
}

const loaded = new Map<string, ReadonlySet<string>>();

/** Digests ({@link policyDigest}) of the policies validated at build time under `schema`; empty when none are on record. */
export function prevalidatedPolicies(schema: string, file: string = PREVALIDATED_FILE, cedar: string | undefined = installedCedarVersion()): ReadonlySet<string> {
  const key = `${file}\0${schema}\0${cedar ?? ''}`;
  const known = loaded.get(key);
  if (known !== undefined) return known;
  let set: ReadonlySet<string> = new Set();
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as PrevalidatedRecord;
    if (cedar !== undefined && record.cedar === cedar && record.schema === digest(schema) && Array.isArray(record.policies)) set = new Set(record.policies.filter((p) => typeof p === 'string'));
  } catch {
    // No record (running the sources) or a broken one: validate everything.
  }
  loaded.set(key, set);
  return set;
}

/**
 * Build step: writes to `file` the digests of the policies in `policies` (Cedar text by id) that
 * `validate` passes. `validate` returns the ids Cedar rejected (strict mode); only the others are
 * recorded, under `cedar`, the version of the cedar-wasm that validated them (the installed one).
 * Returns how many were recorded.
 * @throws Error when the cedar-wasm version cannot be read.
 */
export function writePrevalidatedPolicies(file: string, schema: string, policies: Record<string, string>, validate: (policies: Record<string, string>) => ReadonlySet<string>, cedar: string | undefined = installedCedarVersion()): number {
  if (cedar === undefined) throw new Error('cannot record prevalidated Cedar policies: the cedar-wasm version is not readable');
  const rejected = validate(policies);
  const digests = [...new Set(Object.entries(policies).filter(([id]) => !rejected.has(id)).map(([, text]) => policyDigest(schema, text)))].sort();
  writeFileSync(file, `${JSON.stringify({ schema: digest(schema), cedar, policies: digests } satisfies PrevalidatedRecord)}\n`);
  return digests.length;
}

/** Folders under `packsDir` that hold a bundled pack (a rules.txt). */
export function bundledPackNames(packsDir: string): string[] {
  return readdirSync(packsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && readdirSync(join(packsDir, entry.name)).includes('rules.txt'))
    .map((entry) => entry.name)
    .sort();
}
