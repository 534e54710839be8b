/**
 * Picks the model driver for an agent's `model` block. The one place that knows every driver,
 * so activities need not.
 */
import type { Model } from '../task/task-schema';
import { ModelError } from '../errors';
import type { ModelDriver } from './model-driver';
import { OpenAICompatibleDriver, type OpenAICompatibleDriverOptions } from './openai-compatible-driver';
import { ScriptedDriver } from './scripted-driver';

/** Options handed to whichever driver is picked; drivers ignore what does not concern them. */
export type CreateDriverOptions = OpenAICompatibleDriverOptions;

/** Returns the driver for `model.driver`. Creating a driver does no I/O; problems surface on the first turn. */
export function createDriver(model: Model, options: CreateDriverOptions = {}): ModelDriver {
  switch (model.driver) {
    case 'scripted':
      return new ScriptedDriver(model);
    case 'openai-compatible':
      return new OpenAICompatibleDriver(model, options);
    case 'mcp-client':
      // Its actions arrive as tool calls through `warden mcp serve`; nobody asks it for a turn.
      throw new ModelError('ERR_MODEL_CONFIG', 'an "mcp-client" agent is driven by its MCP client (warden mcp serve), not by a model driver');
    default: {
      // A new driver kind in the schema must be handled here; this fails to compile otherwise.
      const unknown: never = model;
      throw new TypeError(`unknown model driver: ${JSON.stringify((unknown as { driver?: unknown }).driver)}`);
    }
  }
}
