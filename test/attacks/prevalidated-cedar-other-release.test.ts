/**
 * Attack (issue 17: the build-time Cedar validation record, policies/engine/prevalidated-policies.ts):
 * the record that lets the task check and the workers skip validating the bundled packs' Cedar was
 * keyed by the schema and the policy text only, not by the validator. package.json takes
 * `@cedar-policy/cedar-wasm` by a caret range, so an install (or a later `npm install` without a
 * build) runs another Cedar release than the one that validated the record, and a policy that
 * release's strict validation refuses was skipped as "validated". A record now names the cedar-wasm
 * version that made it, and skips nothing under any other (or when it names none: older builds).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WARDEN_CEDAR_SCHEMA } from '../../policies/engine/compile-rule';
import { installedCedarVersion, policyDigest, prevalidatedPolicies, writePrevalidatedPolicies } from '../../policies/engine/prevalidated-policies';

describe('a Cedar validation record made by another Cedar release skips nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-prevalidated-release-'));
  // Refused by strict validation today: an attribute warden.cedarschema does not declare.
  const text = 'forbid (principal, action, resource) when { context.noSuchAttribute == 1 };';

  /** A record as the build writes it, then edited by `edit` (what another build, with another cedar-wasm, wrote). */
  function recordWith(name: string, edit: (record: Record<string, unknown>) => void): string {
    const file = join(dir, `${name}.json`);
    writePrevalidatedPolicies(file, WARDEN_CEDAR_SCHEMA, { p: text }, () => new Set());
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(record);
    writeFileSync(file, JSON.stringify(record));
    return file;
  }

  it('the installed cedar-wasm version is read without loading it', () => {
    expect(installedCedarVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  const cases: [string, (record: Record<string, unknown>) => void][] = [
    ['another release', (r) => (r.cedar = '4.0.0-older')],
    ['no release named (a record of an older build)', (r) => delete r.cedar],
    ['a release that is not a string', (r) => (r.cedar = 4)],
  ];
  it.each(cases)('%s: nothing is skipped', (name, edit) => {
    const file = recordWith(name.replace(/\W+/g, '-'), edit);
    expect(prevalidatedPolicies(WARDEN_CEDAR_SCHEMA, file).has(policyDigest(WARDEN_CEDAR_SCHEMA, text))).toBe(false);
  });

  it('the installed release: the record skips what it names', () => {
    const file = recordWith('same', () => undefined);
    expect(prevalidatedPolicies(WARDEN_CEDAR_SCHEMA, file).has(policyDigest(WARDEN_CEDAR_SCHEMA, text))).toBe(true);
  });
});
