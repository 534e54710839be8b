/**
 * Cedar policies of the bundled packs, validated once at build time (`npm run build`), so a
 * process does not load Cedar's validator (about a second of cold WebAssembly) to validate text
 * that this build already validated: `warden run` checks a default task file without Cedar.
 *
 * Invariant: a policy is skipped only when its exact Cedar text was validated (strict mode)
 * against the exact schema text in use. The record is keyed by SHA-256 over schema and policy
 * text and lives in the build folder beside this module, written by the same build that wrote the
 * code: whoever can change it can change the code. Missing, unreadable or for another schema: no
 * policy is skipped. Cedar validation is per policy (no cross-policy checks), so validating only
 * the policies not on record decides the same as validating all of them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the build writes the record (beside the compiled module; absent when running the sources). */
export const PREVALIDATED_FILE = join(__dirname, 'cedar-prevalidated.json');

interface PrevalidatedRecord {
  schema: string;
  policies: string[];
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/** The record key of one policy's Cedar text under `schema`. */
export function policyDigest(schema: string, policyText: string): string {
  return digest(`${digest(schema)}\0${policyText}`);
}

const loaded = new Map<string, ReadonlySet<string>>();

/** Digests ({@link policyDigest}) of the policies validated at build time under `schema`; empty when none are on record. */
export function prevalidatedPolicies(schema: string, file: string = PREVALIDATED_FILE): ReadonlySet<string> {
  const key = `${file}\0${schema}`;
  const known = loaded.get(key);
  if (known !== undefined) return known;
  let set: ReadonlySet<string> = new Set();
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as PrevalidatedRecord;
    if (record.schema === digest(schema) && Array.isArray(record.policies)) set = new Set(record.policies.filter((p) => typeof p === 'string'));
  } catch {
    // No record (running the sources) or a broken one: validate everything.
  }
  loaded.set(key, set);
  return set;
}

/**
 * Build step: writes to `file` the digests of the policies in `policies` (Cedar text by id) that
 * `validate` passes. `validate` returns the ids Cedar rejected (strict mode); only the others are
 * recorded. Returns how many were recorded.
 */
export function writePrevalidatedPolicies(file: string, schema: string, policies: Record<string, string>, validate: (policies: Record<string, string>) => ReadonlySet<string>): number {
  const rejected = validate(policies);
  const digests = [...new Set(Object.entries(policies).filter(([id]) => !rejected.has(id)).map(([, text]) => policyDigest(schema, text)))].sort();
  writeFileSync(file, `${JSON.stringify({ schema: digest(schema), policies: digests } satisfies PrevalidatedRecord)}\n`);
  return digests.length;
}

/** Folders under `packsDir` that hold a bundled pack (a rules.txt). */
export function bundledPackNames(packsDir: string): string[] {
  return readdirSync(packsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && readdirSync(join(packsDir, entry.name)).includes('rules.txt'))
    .map((entry) => entry.name)
    .sort();
}
