/**
 * A task reaches its activities with its MCP servers' tool lists by digest (`tools.mcpPins`),
 * not in full: the lists are the servers' to size and would otherwise be copied into the workflow
 * history with every step. Before an activity runs, the worker reads each list from its state
 * store by that digest, checks it (mcp/mcp-listing-store.ts) and hands the activity the task as
 * it was pinned (`tools.mcpPinned`), so no activity needs to know which form travelled.
 *
 * Fail closed: a pin that cannot be read or does not match fails the activity with its typed
 * error (ERR_MCP_LISTING_MISSING, ERR_MCP_PIN_MISMATCH); the call never runs without its pin.
 * Inputs of histories from before (the full lists in `tools.mcpPinned`) pass unchanged.
 */
import { McpError } from '../errors';
import type { McpListingStore } from '../mcp/mcp-listing-store';
import type { Task } from '../task/task-schema';
import { atActivityBoundary } from './to-application-failure';

/** The task with its pinned lists read back by digest; `task` itself when it carries them in full or has none. */
export async function taskWithPinnedListings(store: McpListingStore | undefined, task: Task): Promise<Task> {
  const pins = task.tools.mcpPins;
  if (pins === undefined || task.tools.mcpPinned !== undefined) return task;
  if (store === undefined) {
    throw new McpError('ERR_MCP_LISTING_MISSING', 'this worker was created without a store for pinned MCP tool lists; the task\'s MCP tools are refused', {
      details: { servers: pins.map((p) => p.server) },
    });
  }
  const mcpPinned = await Promise.all(pins.map((ref) => store.get(ref)));
  return { ...task, tools: { ...task.tools, mcpPinned } };
}

function carriesPins(input: unknown): input is { task: Task } {
  if (typeof input !== 'object' || input === null || !('task' in input)) return false;
  const task = (input as { task: unknown }).task as { tools?: { mcpPins?: unknown } } | undefined;
  return Array.isArray(task?.tools?.mcpPins);
}

type Activity = (...args: never[]) => Promise<unknown>;

/**
 * Every activity of `activities`, reading its input's pinned lists back first (inputs without a
 * `task`, or whose task has no pins, pass untouched). Names and shapes are kept.
 */
export function withPinnedListings<A extends Record<string, Activity>>(store: McpListingStore | undefined, activities: A): A {
  const wrapped: Record<string, Activity> = {};
  for (const [name, activity] of Object.entries(activities)) {
    const run = activity as unknown as (input: unknown, ...rest: unknown[]) => Promise<unknown>;
    const hydrating = async (input: unknown, ...rest: unknown[]) => {
      if (!carriesPins(input)) return run(input, ...rest);
      const task = await atActivityBoundary(() => taskWithPinnedListings(store, input.task));
      return run({ ...input, task }, ...rest);
    };
    Object.defineProperty(hydrating, 'name', { value: activity.name || name });
    wrapped[name] = hydrating as unknown as Activity;
  }
  return wrapped as A;
}
