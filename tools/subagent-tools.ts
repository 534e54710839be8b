/**
 * Sub-agents' tools that share a name with their parent's: the name keeps the parent's meaning.
 * A sub-agent may narrow such a tool (fewer capabilities, a shorter timeout, less memory), never
 * redefine it. Pure: workflow code may import this file.
 */
import type { Tools, UserTool } from '../task/task-schema';

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function durationMs(text: string | undefined): number {
  if (text === undefined) return Number.POSITIVE_INFINITY;
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (match === null) return Number.POSITIVE_INFINITY;
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
}

/** Why `child` is not `parent`'s definition or narrower; undefined when it is. */
export function redefinitionOf(parent: UserTool, child: UserTool): string | undefined {
  if (child.source !== parent.source) return 'its source differs';
  if (!same(child.input, parent.input)) return 'its input schema differs';
  if (!same(child.effects, parent.effects)) return 'its declared effects differ';
  if (!same(child.annotations, parent.annotations)) return 'its annotations differ';
  if (child.compensate !== parent.compensate) return 'its compensating tool differs';
  const extra = child.capabilities.filter((c) => !parent.capabilities.includes(c));
  if (extra.length > 0) return `it adds capabilities ${extra.join(', ')}`;
  if (durationMs(child.timeout) > durationMs(parent.timeout)) return 'its timeout is longer';
  if ((child.memoryMb ?? Number.POSITIVE_INFINITY) > (parent.memoryMb ?? Number.POSITIVE_INFINITY)) return 'it asks for more memory';
  return undefined;
}

/**
 * The sub-agent's tools with every tool named like one of the parent's replaced by the parent's
 * definition, keeping only the capabilities both declare (and the smaller limits). A sub-agent
 * tool the parent does not have stays as declared: its capabilities still need the sub-agent's
 * grants, which can only narrow the parent's.
 */
export function narrowSubagentTools(parent: Tools, child: Tools): Tools {
  return {
    builtin: child.builtin,
    custom: child.custom.map((tool) => {
      const own = parent.custom.find((t) => t.name === tool.name);
      if (own === undefined) return tool;
      const narrowed: UserTool = { ...own, capabilities: own.capabilities.filter((c) => tool.capabilities.includes(c)) };
      const timeout = durationMs(tool.timeout) < durationMs(own.timeout) ? tool.timeout : own.timeout;
      if (timeout !== undefined) narrowed.timeout = timeout;
      const memoryMb = Math.min(tool.memoryMb ?? Number.POSITIVE_INFINITY, own.memoryMb ?? Number.POSITIVE_INFINITY);
      if (Number.isFinite(memoryMb)) narrowed.memoryMb = memoryMb;
      return narrowed;
    }),
  };
}
