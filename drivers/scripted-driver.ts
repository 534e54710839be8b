/**
 * The scripted model driver: plays back the actions written in the task file, one per turn.
 * It stands in for a real (and possibly prompt-injected) model in tests, demos and replays, so
 * it does no checking of its own: whatever the script proposes goes to the workflow, which
 * decides. Turn N always yields script[N], which keeps a replayed task byte-for-byte identical.
 */
import { ModelError } from '../errors';
import type { Action, ModelTurn } from '../task/task-run';
import type { Model, ScriptedAction } from '../task/task-schema';
import type { DriverInput, ModelDriver } from './model-driver';

/** The `agent.model` of a task whose driver is `scripted`. */
export type ScriptedModel = Extract<Model, { driver: 'scripted' }>;

/** Converts one action as written in a task file into the `Action` the workflow checks. */
export function scriptedActionToAction(action: ScriptedAction): Action {
  if ('tool' in action) {
    // A copy, so nothing downstream can change the script held by this driver.
    return { type: 'tool', tool: action.tool, args: structuredClone(action.args) };
  }
  if ('spawn' in action) {
    // No `intent` means "the sub-agent's declared intent"; leave the key out rather than undefined.
    return action.intent === undefined
      ? { type: 'spawn', subagent: action.spawn }
      : { type: 'spawn', subagent: action.spawn, intent: action.intent };
  }
  return { type: 'final', answer: action.final, claims: [...action.claims] };
}

/** Plays back `model.script`: turn N returns script[N] as a single action. */
export class ScriptedDriver implements ModelDriver {
  readonly #model: ScriptedModel;

  constructor(model: ScriptedModel) {
    this.#model = model;
  }

  /** @throws ModelError `ERR_SCRIPT_EXHAUSTED` when the turn is past the end of the script. */
  async proposeTurn(input: DriverInput): Promise<ModelTurn> {
    const { turn } = input;
    if (!Number.isInteger(turn) || turn < 0) throw new TypeError(`turn must be a non-negative integer, got ${turn}`);
    const { script, id, version } = this.#model;
    const action = script[turn];
    if (action === undefined) {
      const count = script.length;
      throw new ModelError(
        'ERR_SCRIPT_EXHAUSTED',
        `the script of model "${id}" has ${count} action${count === 1 ? '' : 's'}; turn ${turn + 1} asked for another`,
        { details: { model: id, actions: count, turn } },
      );
    }
    return { actions: [scriptedActionToAction(action)], model: { id, version } };
  }
}
