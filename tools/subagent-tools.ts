/**
 * Sub-agents' tools that share a name with their parent's: the name keeps the parent's meaning.
 * A sub-agent may narrow such a tool (fewer capabilities, a shorter timeout, less memory), never
 * redefine it. Pure: workflow code may import this file.
 */
import type { Grants, Tools, UserTool } from '../task/task-schema';

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

type TableEntry = NonNullable<Grants['tables']>[number];

function entryOf(entry: TableEntry): { table: string; access: 'read' | 'write' } {
  return typeof entry === 'string' ? { table: entry.toLowerCase(), access: 'write' } : { table: entry.table.toLowerCase(), access: entry.access };
}

/**
 * A sub-agent's table grants, never wider than its parent's: for a database the parent has
 * table by table, the sub-agent gets the tables both name (the narrower access), or the parent's
 * own list when it names none; other databases keep the sub-agent's own list.
 */
export function narrowSubagentTables(parent: Grants, child: Grants): Grants['tables'] {
  const parentTables = (parent.tables ?? []).map(entryOf);
  const childTables = (child.tables ?? []).map(entryOf);
  const restricted = new Set(parentTables.map((t) => t.table.slice(0, t.table.indexOf('.'))));
  const out: { table: string; access: 'read' | 'write' }[] = [];
  for (const database of child.databases) {
    const own = childTables.filter((t) => t.table.startsWith(`${database.toLowerCase()}.`));
    if (!restricted.has(database)) {
      out.push(...own);
      continue;
    }
    const allowed = parentTables.filter((t) => t.table.startsWith(`${database.toLowerCase()}.`));
    if (own.length === 0) out.push(...allowed);
    for (const t of own) {
      const p = allowed.find((a) => a.table === t.table);
      if (p !== undefined) out.push({ table: t.table, access: p.access === 'read' || t.access === 'read' ? 'read' : 'write' });
    }
    // A restricted database the sub-agent narrowed to nothing it may have: no table at all.
    if (own.length > 0 && !out.some((t) => t.table.startsWith(`${database.toLowerCase()}.`))) out.push({ table: `${database.toLowerCase()}.__none__`, access: 'read' });
  }
  return out.length === 0 ? (child.tables === undefined ? undefined : []) : out.map((t) => ({ table: t.table, access: t.access }));
}
