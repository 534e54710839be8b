/**
 * JSON-Schema validation of tool arguments, before any sandbox is started. Compiled validators are
 * cached by schema text, since a task calls the same few tools many times.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const cache = new Map<string, ValidateFunction>();

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
    validate = ajv.compile(schema);
    cache.set(key, validate);
  }
  return validate;
}

/** Problems of `args` against `schema`; empty when valid. */
export function validateToolInput(schema: Record<string, unknown>, args: unknown): SchemaProblem[] {
  const validate = compileToolSchema(schema);
  return validate(args) ? [] : describe(validate.errors);
}
