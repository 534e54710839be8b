/**
 * JSON-Schema validation of tool arguments, before any sandbox is started. Compiled validators are
 * cached by schema text, since a task calls the same few tools many times.
 *
 * A tool's schema is first checked against JSON Schema draft-07's meta-schema (ajv's default).
 * Compiling that meta-schema is most of the first check's cost (about 0.4 s on a busy machine,
 * paid by every `warden run` that checks a task with a tool schema), so `npm run build` writes
 * ajv's standalone code for it next to this module (`json-schema-meta-validator.js`), and a
 * process of that build checks with it. It is ajv's own validator for the same meta-schema with
 * the same options, so the errors and messages are the same ("schema is invalid: data/type must
 * ..."); a schema naming another `$schema`, or a process without the file (sources run through
 * tsx), is checked by ajv itself.
 */
import { join } from 'node:path';
import type { default as AjvClass, ErrorObject, ValidateFunction } from 'ajv';

const AJV_OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true } as const;
/** Written by `npm run build` (scripts/build.js) from {@link metaValidatorSource}. */
export const PRECOMPILED_META_VALIDATOR = join(__dirname, 'json-schema-meta-validator.js');

// Loaded on first use: a task without tool schemas (and `warden run` checking one) never pays for ajv.
// Schemas are checked against the meta-schema here (assertValidSchema), not by ajv's compile.
let ajvInstance: AjvClass | undefined;
const ajv = (): AjvClass => (ajvInstance ??= new (require('ajv') as typeof import('ajv')).default({ ...AJV_OPTIONS, validateSchema: false }));
const cache = new Map<string, ValidateFunction>();
let precompiled: ValidateFunction | null | undefined;

/** The build's draft-07 meta-schema validator, or null when this process has none. */
function precompiledMetaValidator(): ValidateFunction | null {
  if (precompiled === undefined) {
    try {
      precompiled = require(PRECOMPILED_META_VALIDATOR) as ValidateFunction;
    } catch {
      precompiled = null;
    }
  }
  return precompiled;
}

/**
 * ajv's standalone code (a CommonJS module) validating against its default meta-schema (JSON
 * Schema draft-07) with the options tool schemas are compiled with. Run by the build.
 */
export function metaValidatorSource(): string {
  const Ajv = (require('ajv') as typeof import('ajv')).default;
  const standalone = (require('ajv/dist/standalone') as typeof import('ajv/dist/standalone')).default;
  const generator = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  const meta = generator.getSchema(generator.defaultMeta() as string);
  if (meta === undefined) throw new Error('ajv has no default meta-schema');
  return standalone(generator, meta);
}

/**
 * Throws ajv's own error (`schema is invalid: <errors>`) when `schema` breaks its meta-schema
 * (draft-07, or the one its `$schema` names). `meta`: a draft-07 validator to use instead of
 * compiling the meta-schema (default: the build's, see the module comment; null: ajv's).
 */
export function assertValidSchema(schema: Record<string, unknown>, meta: ValidateFunction | null = precompiledMetaValidator()): void {
  if (meta === null || schema.$schema !== undefined) {
    ajv().validateSchema(schema, true);
    return;
  }
  if (!meta(schema)) throw new Error(`schema is invalid: ${ajv().errorsText(meta.errors)}`);
}

export interface SchemaProblem {
  /** JSON pointer into the arguments ("" for the whole object). */
  path: string;
  message: string;
}

function describe(errors: readonly ErrorObject[] | null | undefined): SchemaProblem[] {
  return (errors ?? []).map((e) => {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` ("${String((e.params as { additionalProperty: string }).additionalProperty)}")`
        : e.keyword === 'enum'
          ? ` (${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)})`
          : '';
    return { path: e.instancePath, message: `${e.message ?? 'is invalid'}${extra}` };
  });
}

/** Compiles a schema; throws a TypeError naming what is wrong with it. */
export function compileToolSchema(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = cache.get(key);
  if (validate === undefined) {
    assertValidSchema(schema);
    validate = ajv().compile(schema);
    cache.set(key, validate);
  }
  return validate;
}

/** Problems of `args` against `schema`; empty when valid. */
export function validateToolInput(schema: Record<string, unknown>, args: unknown): SchemaProblem[] {
  const validate = compileToolSchema(schema);
  return validate(args) ? [] : describe(validate.errors);
}
