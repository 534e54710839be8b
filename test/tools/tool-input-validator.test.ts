/**
 * Tool schemas are checked against JSON Schema's meta-schema before they are compiled. A build
 * checks with ajv's standalone code for the meta-schema (written by `npm run build`, so no
 * process compiles the meta-schema); that check must be ajv's own: the same verdict and the same
 * message for every schema, valid or not. The table holds both kinds, and each error case is one
 * a task author can write.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { assertValidSchema, compileToolSchema, metaValidatorSource, PRECOMPILED_META_VALIDATOR, validateToolInput } from '../../tools/tool-input-validator';
import { REPO_ROOT } from '../support/warden-test-env';

/** The standalone module's export, evaluated as the build's file is (its `require`s resolve from the repository). */
function loadStandalone(source: string): ValidateFunction {
  const module = { exports: {} as unknown };
  new Function('module', 'exports', 'require', source)(module, module.exports, createRequire(join(REPO_ROOT, 'tools', 'x.js')));
  return module.exports as ValidateFunction;
}

const SCHEMAS: Array<[name: string, schema: Record<string, unknown>]> = [
  ['an object', { type: 'object' }],
  ['properties and required', { type: 'object', properties: { a: { type: 'number' }, b: { type: ['string', 'null'] } }, required: ['a'], additionalProperties: false }],
  ['nested arrays and enums', { type: 'object', properties: { xs: { type: 'array', items: { enum: ['a', 'b'] }, minItems: 1, uniqueItems: true } } }],
  ['refs to definitions', { definitions: { n: { type: 'integer', minimum: 0 } }, type: 'object', properties: { n: { $ref: '#/definitions/n' } } }],
  ['an unknown type', { type: 'nonsense' }],
  ['a type list with a number', { properties: { a: { type: ['string', 3] } } }],
  ['required not a list', { type: 'object', required: 'a' }],
  ['several faults at once', { minimum: 'x', enum: [], properties: { a: { maxLength: -1 } } }],
  ['a non-unique required list', { type: 'object', required: ['a', 'a'] }],
  ['a bad pattern type', { type: 'string', pattern: 5 }],
  ['properties not an object', { type: 'object', properties: [] }],
];

/** What assertValidSchema does: undefined when accepted, else the error's message. */
function verdict(schema: Record<string, unknown>, meta: ValidateFunction | null): string | undefined {
  try {
    assertValidSchema(schema, meta);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

describe('tool schema meta-schema check', () => {
  const standalone = loadStandalone(metaValidatorSource());

  it.each(SCHEMAS)('the standalone meta-schema validator answers as ajv does: %s', (_name, schema) => {
    const own = verdict(schema, null);
    expect(verdict(schema, standalone)).toBe(own);
  });

  it('the table holds both kinds, and errors read as ajv writes them', () => {
    const verdicts = SCHEMAS.map(([, schema]) => verdict(schema, standalone));
    expect(verdicts.filter((v) => v === undefined)).toHaveLength(4);
    expect(verdict({ type: 'nonsense' }, standalone)).toBe('schema is invalid: data/type must be equal to one of the allowed values, data/type must be array, data/type must match a schema in anyOf');
  });

  it('a schema naming its own $schema is checked by ajv against that meta-schema', () => {
    const rejectAll = Object.assign(() => false, { errors: [] }) as unknown as ValidateFunction;
    expect(verdict({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' }, rejectAll)).toBeUndefined();
    expect(verdict({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'nonsense' }, rejectAll)).toMatch(/^schema is invalid: data\/type must be/);
    expect(verdict({ $schema: 'https://example.com/unknown', type: 'object' }, rejectAll)).toMatch(/no schema with key or ref/);
  });

  it('compileToolSchema refuses what the meta-schema or strict mode refuses, and validates arguments', () => {
    expect(() => compileToolSchema({ type: 'nonsense' })).toThrow(/^schema is invalid: data\/type/);
    expect(() => compileToolSchema({ type: 'object', colour: 'red' })).toThrow(/strict mode: unknown keyword: "colour"/);
    expect(validateToolInput({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }, { n: 'x' })).toEqual([{ path: '/n', message: 'must be number' }]);
    expect(validateToolInput({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }, { n: 1 })).toEqual([]);
  });

  it.runIf(existsSync(join(REPO_ROOT, 'build', 'BUILD_STAMP')))('the build wrote the standalone validator next to the compiled module', () => {
    const built = PRECOMPILED_META_VALIDATOR.replace(REPO_ROOT, join(REPO_ROOT, 'build'));
    expect(existsSync(built)).toBe(true);
    const fromBuild = createRequire(built)(built) as ValidateFunction;
    for (const [, schema] of SCHEMAS) expect(verdict(schema, fromBuild)).toBe(verdict(schema, null));
  });
});
