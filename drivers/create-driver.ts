/**
 * Picks the model driver for an agent's `model` block. The one place that knows every driver,
 * so activities need not.
 */
import { WARDEN_ATTR } from '../custody/attributes';
import { wellFormedJson } from '../custody/well-formed-json';
import type { Model } from '../task/task-schema';
import { annotateActiveSpan } from '../telemetry/warden-span-attributes';
import { ModelError } from '../errors';
import { cutText } from '../cut-text';
import { redactText } from '../secrets/redact-values';
import type { ModelDriver } from './model-driver';
import { ScriptedDriver } from './scripted-driver';

/** Options handed to whichever driver is picked; drivers ignore what does not concern them. */
export interface CreateDriverOptions {
  /** Where API key variables are looked up, at every call. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Returns the driver for `model.driver`, its turns made well-formed ({@link pickDriver} is the
 * driver itself). Creating a driver does no I/O; problems surface on the first turn. A provider's
 * driver module (and its SDK: `openai`, `@anthropic-ai/sdk`) loads at that first turn: a worker
 * loaded both SDKs at start, about half a second of a `warden run`'s start-up (issue 17), though a
 * task uses one driver or none. An SDK that cannot load fails that turn, and every later one of
 * this driver, with ModelError `ERR_MODEL_CONFIG`, not retryable (see loadDriverModule).
 * @throws ModelError `ERR_MODEL_CONFIG` for an "mcp-client" model (nobody asks it for a turn).
 */
export function createDriver(model: Model, options: CreateDriverOptions = {}): ModelDriver {
  if (model.driver === 'mcp-client') throw mcpClientHasNoDriver();
  let driver: Promise<ModelDriver> | undefined;
  return wellFormedTurns({
    async proposeTurn(input, signal) {
      return (await (driver ??= pickDriver(model, options))).proposeTurn(input, signal);
    },
  });
}

/**
 * Every driver's turn made well-formed where it enters Warden (custody/well-formed-json.ts): a
 * model's arguments "\ud800" would otherwise leave the call's custody span without their digest.
 * The model call's span counts the mended strings (`warden.model.turn.mended`).
 */
function wellFormedTurns(driver: ModelDriver): ModelDriver {
  return {
    async proposeTurn(input, signal) {
      const { value, mended } = wellFormedJson(await driver.proposeTurn(input, signal));
      if (mended > 0) annotateActiveSpan({ [WARDEN_ATTR.modelTurnMended]: mended });
      return value;
    },
  };
}

function mcpClientHasNoDriver(): ModelError {
  // Its actions arrive as tool calls through `warden mcp serve`; nobody asks it for a turn.
  return new ModelError('ERR_MODEL_CONFIG', 'an "mcp-client" agent is driven by its MCP client (warden mcp serve), not by a model driver');
}

/**
 * The driver class for `model.driver`, as is (its turns as the provider sent them), its module
 * loaded on demand. Rejects with ModelError `ERR_MODEL_CONFIG` for an "mcp-client" model.
 */
export async function pickDriver(model: Model, options: CreateDriverOptions = {}): Promise<ModelDriver> {
  switch (model.driver) {
    case 'scripted':
      return new ScriptedDriver(model);
    case 'openai':
    case 'openai-compatible':
      return new (await loadDriverModule(model, 'openai', () => import('./openai-driver.js'), options)).OpenAIDriver(model, options);
    case 'anthropic':
      return new (await loadDriverModule(model, '@anthropic-ai/sdk', () => import('./anthropic-driver.js'), options)).AnthropicDriver(model, options);
    case 'mcp-client':
      throw mcpClientHasNoDriver();
    default: {
      // A new driver kind in the schema must be handled here; this fails to compile otherwise.
      const unknown: never = model;
      throw new TypeError(`unknown model driver: ${JSON.stringify((unknown as { driver?: unknown }).driver)}`);
    }
  }
}

/** How much of the loader's reason a ModelError quotes (its first line: no require stack of paths). */
const LOAD_REASON_MAX = 300;

/**
 * Loads a provider driver's module and, with it, its SDK `pkg`. A load that fails (the package
 * missing from the install, a module throwing while it loads) cannot be mended by a retry: it is
 * ModelError `ERR_MODEL_CONFIG`, not retryable, naming the driver, the package and the loader's
 * reason (first line, cut, the model's API key replaced), so every task fails closed at once
 * instead of `ERR_UNKNOWN` after Temporal's retries.
 */
async function loadDriverModule<M>(model: Model, pkg: string, load: () => Promise<M>, options: CreateDriverOptions): Promise<M> {
  try {
    return await load();
  } catch (error) {
    const reason = redactText(String((error as Error | undefined)?.message ?? error).split('\n')[0]!, driverSecrets(model, options.env ?? process.env));
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const missing = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
    return Promise.reject(
      new ModelError(
        'ERR_MODEL_CONFIG',
        `the "${model.driver}" model driver cannot load its SDK, the npm package ${pkg}: ${missing ? 'it is not installed here' : 'it failed while loading'} (${cutText(reason, LOAD_REASON_MAX)}); install or repair it where Warden is installed (npm install ${pkg}) and restart the worker`,
        { details: { driver: model.driver, package: pkg, ...(code === undefined ? {} : { loaderCode: String(code) }) } },
      ),
    );
  }
}

/** The secrets a model's driver sends (its API key), read from `env`: what no turn may carry. */
export function driverSecrets(model: Model, env: Readonly<Record<string, string | undefined>>): string[] {
  if (!('apiKeyEnv' in model) || model.apiKeyEnv === undefined) return [];
  const value = env[model.apiKeyEnv];
  if (value === undefined || value === '') return [];
  // A key read from a file keeps its line end or padding, and an SDK quotes it trimmed: the
  // trimmed form and each line are the key too (derived forms under 8 characters would redact
  // ordinary text, and no provider's key is that short). Longest first, so the whole is replaced first.
  const derived = [value.trim(), ...value.split(/\r?\n/).map((line) => line.trim())].filter((form) => form.length >= MIN_DERIVED_SECRET);
  return [...new Set([value, ...derived])].sort((a, b) => b.length - a.length);
}

/** The shortest trimmed form or line of a key that {@link driverSecrets} treats as the key. */
const MIN_DERIVED_SECRET = 8;
