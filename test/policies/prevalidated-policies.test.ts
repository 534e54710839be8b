/**
 * Build-time Cedar validation (policies/engine/prevalidated-policies.ts): a policy is skipped only
 * when its exact text was validated under the exact schema in use; `checkPolicyRules` throws what
 * `loadPolicyEngine` throws for the same rules; and a process of the build checks the default
 * packs without loading cedar-wasm at all (what keeps `warden run`'s task check fast).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileRule, WARDEN_CEDAR_SCHEMA, type CompiledRule } from '../../policies/engine/compile-rule';
import { checkPolicyRules, loadPolicyEngine, type LoadPolicyEngineOptions } from '../../policies/engine/policy-engine';
import { policyDigest, prevalidatedPolicies, writePrevalidatedPolicies } from '../../policies/engine/prevalidated-policies';
import { REPO_ROOT } from '../support/warden-test-env';

const dir = mkdtempSync(join(tmpdir(), 'warden-prevalidated-'));

/** A compiled rule whose Cedar reads an attribute warden.cedarschema does not have: strict validation refuses it. */
function invalidCedarRule(id: string): CompiledRule {
  return { ...compileRule('deny fs.write', id), cedar: `@id("${id}")\nforbid (principal, action, resource) when { context.noSuchAttribute == 1 };` } as CompiledRule;
}

function packFolder(parent: string, name: string, rules: string): string {
  const folder = join(dir, parent, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'rules.txt'), rules);
  return folder;
}

function thrown(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  }
  return 'nothing thrown';
}

describe('prevalidated Cedar policies', () => {
  it('a record skips exactly the policies it names, and only under the schema it was made for', () => {
    const file = join(dir, 'record.json');
    const policies = { a: 'permit (principal, action, resource);', b: 'forbid (principal, action, resource);' };
    const recorded = writePrevalidatedPolicies(file, WARDEN_CEDAR_SCHEMA, policies, () => new Set(['b']));
    expect(recorded).toBe(1);
    const known = prevalidatedPolicies(WARDEN_CEDAR_SCHEMA, file);
    expect(known.has(policyDigest(WARDEN_CEDAR_SCHEMA, policies.a))).toBe(true);
    expect(known.has(policyDigest(WARDEN_CEDAR_SCHEMA, policies.b))).toBe(false);
    // The same text under another schema is not on record.
    expect(prevalidatedPolicies(`${WARDEN_CEDAR_SCHEMA}\n// changed`, file).size).toBe(0);
    expect(policyDigest(`${WARDEN_CEDAR_SCHEMA}\n// changed`, policies.a)).not.toBe(policyDigest(WARDEN_CEDAR_SCHEMA, policies.a));
    // A missing or broken record skips nothing.
    expect(prevalidatedPolicies(WARDEN_CEDAR_SCHEMA, join(dir, 'missing.json')).size).toBe(0);
    writeFileSync(join(dir, 'broken.json'), '{"schema": 1, "policies": "all"');
    expect(prevalidatedPolicies(WARDEN_CEDAR_SCHEMA, join(dir, 'broken.json')).size).toBe(0);
  });

  // [what, engine options, what must be thrown]
  const bad: [string, () => LoadPolicyEngineOptions, RegExp][] = [
    ['a sentence that does not read', () => ({ sentences: ['deny everything forever please'] }), /^ERR_POLICY_UNREADABLE/],
    ['two packs whose rules share ids', () => ({ packs: [packFolder('one', 'same', 'deny fs.write\n'), packFolder('two', 'same', 'deny http.fetch\n')] }), /two rules share the id "same:1"/],
    ['a compiled rule Cedar refuses (strict validation)', () => ({ packs: ['foundation'], rules: [invalidCedarRule('custom:1')] }), /failed Cedar validation:\n {2}custom:1/],
    ['a missing pack', () => ({ packs: [join(dir, 'no-such-pack')] }), /^ERR_POLICY_PACK_NOT_FOUND/],
  ];
  it.each(bad)('checkPolicyRules throws what loadPolicyEngine throws: %s', (_what, options, expected) => {
    const fromCheck = thrown(() => checkPolicyRules(options()));
    expect(fromCheck).toMatch(expected);
    expect(fromCheck).toBe(thrown(() => loadPolicyEngine(options())));
  });

  it('good rules pass both ways', () => {
    const options = { packs: ['foundation', 'advanced'], sentences: ['deny http.fetch for sub-agents'] };
    expect(() => checkPolicyRules(options)).not.toThrow();
    expect(loadPolicyEngine(options).rules.length).toBeGreaterThan(0);
  });

  it.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))('the build records the bundled packs: checking them loads no cedar-wasm, a new rule still does', () => {
    const probe = (options: LoadPolicyEngineOptions) =>
      execFileSync(
        process.execPath,
        [
          '-e',
          `require(${JSON.stringify(join(REPO_ROOT, 'build', 'policies', 'engine', 'policy-engine.js'))}).checkPolicyRules(${JSON.stringify(options)});` +
            `process.stdout.write(String(Object.keys(require.cache).some((f) => f.includes('cedar-wasm'))))`,
        ],
        { encoding: 'utf8' },
      );
    expect(probe({ packs: ['foundation'] })).toBe('false');
    expect(probe({ packs: ['foundation'], sentences: ['deny http.fetch for sub-agents'] })).toBe('true');
  });
});
