/**
 * What "a sub-agent's task is never wider than its parent's" means, field by field of the task.
 * Every field of `Task` and of its `limits` has an entry here (the mapped types make a new field
 * without one a compile error, and test/permissions/derive-subagent-task.test.ts checks the schema's
 * keys at run time): limits say how two values narrow to one, fields say how a child can be wider.
 *
 * Pure and deterministic: the workflow derives sub-agent tasks with it.
 */
import { durationToMs } from '../task/duration';
import { DEFAULT_POLICY_PACKS, type Limits, type Task, type Tools } from '../task/task-schema';
import { redefinitionOf } from '../tools/subagent-tools';
import { PROCESS_LIMIT_DEFAULTS } from '../tools/process-tools';

interface LimitRule<V> {
  /** The narrower of the two values (what a sub-agent runs under). */
  narrower(parent: V, child: V): V;
  /** True when `child` is no wider than `parent`. */
  within(child: V, parent: V): boolean;
}

const smallerNumber: LimitRule<number> = {
  narrower: (parent, child) => Math.min(parent, child),
  within: (child, parent) => child <= parent,
};
const shorterDuration: LimitRule<string> = {
  narrower: (parent, child) => (durationToMs(child) < durationToMs(parent) ? child : parent),
  within: (child, parent) => durationToMs(child) <= durationToMs(parent),
};

/** A number limit that may be left out, meaning `fallback`. */
function smallerOptional(fallback: number): LimitRule<number | undefined> {
  return {
    narrower: (parent, child) => (child === undefined ? parent : Math.min(parent ?? fallback, child)),
    within: (child, parent) => (child ?? fallback) <= (parent ?? fallback),
  };
}

/** How each limit narrows: budgets and times only shrink; `stop` on a denial beats `continue`. */
export const LIMIT_NARROWING: { readonly [K in keyof Limits]-?: LimitRule<Limits[K]> } = {
  maxSteps: smallerNumber,
  deadline: shorterDuration,
  toolTimeout: shorterDuration,
  toolMemoryMb: smallerNumber,
  onDeny: {
    narrower: (parent, child) => (parent === 'stop' ? 'stop' : child),
    within: (child, parent) => parent === 'continue' || child === 'stop',
  },
  approvalTimeout: shorterDuration,
  maxDepth: smallerNumber,
  processMemoryMb: smallerOptional(PROCESS_LIMIT_DEFAULTS.memoryMb),
  processMaxProcesses: smallerOptional(PROCESS_LIMIT_DEFAULTS.maxProcesses),
  workspaceMb: smallerOptional(PROCESS_LIMIT_DEFAULTS.workspaceMb),
};

/** The sub-agent's limits: its own where it names them, each narrowed by the parent's. */
export function narrowLimits(parent: Limits, child: Partial<Limits>): Limits {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(LIMIT_NARROWING) as (keyof Limits)[]) {
    const rule = LIMIT_NARROWING[key] as LimitRule<unknown>;
    const asked = child[key];
    const narrowed = asked === undefined ? parent[key] : rule.narrower(parent[key], asked);
    if (narrowed !== undefined) out[key] = narrowed;
  }
  return out as Limits;
}

/** The packs a task is judged by. */
export function effectivePolicyPacks(task: Pick<Task, 'policyPacks'>): string[] {
  return [...(task.policyPacks ?? DEFAULT_POLICY_PACKS)];
}

function missingFrom(child: readonly string[], parent: readonly string[], what: string): string[] {
  return child.filter((x) => !parent.includes(x)).map((x) => `${what} "${x}" is not the parent's`);
}

function toolsWiderThan(child: Tools, parent: Tools): string[] {
  const out = missingFrom(child.builtin, parent.builtin, 'built-in tool');
  // MCP servers are the root task's: a sub-agent never gets one of its own.
  for (const server of Object.keys(child.mcp ?? {})) out.push(`MCP server "${server}" is not the parent's to hand down`);
  for (const tool of child.custom) {
    const own = parent.custom.find((t) => t.name === tool.name);
    if (own === undefined) out.push(`tool "${tool.name}" is not the parent's`);
    else {
      const why = redefinitionOf(own, tool);
      if (why !== undefined) out.push(`tool "${tool.name}": ${why}`);
    }
  }
  return out;
}

/** Table grants: a database the parent grants table by table is never granted wider to the child. */
function tablesWiderThan(child: Task['grants'], parent: Task['grants']): string[] {
  const entries = (grants: Task['grants']) =>
    (grants.tables ?? []).map((e) => (typeof e === 'string' ? { table: e.toLowerCase(), access: 'write' as const } : { table: e.table.toLowerCase(), access: e.access }));
  const parentTables = entries(parent);
  const childTables = entries(child);
  const out: string[] = [];
  for (const database of child.databases) {
    const prefix = `${database.toLowerCase()}.`;
    const allowed = parentTables.filter((t) => t.table.startsWith(prefix));
    if (allowed.length === 0) continue;
    const own = childTables.filter((t) => t.table.startsWith(prefix));
    if (own.length === 0) out.push(`database "${database}" is granted whole, the parent only table by table`);
    for (const t of own) {
      const p = allowed.find((a) => a.table === t.table);
      if (p === undefined) out.push(`table "${t.table}" is not the parent's`);
      else if (p.access === 'read' && t.access === 'write') out.push(`table "${t.table}" is granted for writing, the parent's only for reading`);
    }
  }
  return out;
}

function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

type FieldCheck<K extends keyof Task> = (child: Task[K], parent: Task[K]) => string[];

/**
 * For each task field, every way the child's value is wider than the parent's (empty: within).
 * Fields that are the sub-agent's own and carry no authority say why.
 */
export const TASK_FIELD_NARROWING: { readonly [K in keyof Task]-?: FieldCheck<K> } = {
  user: (child, parent) => (child === parent ? [] : ['acts for another user']),
  // The parent's words or the sub-agent's declared ones: what it may do is decided by the other
  // fields; where its values came from is the provenance rules' business.
  intent: () => [],
  // Which model runs the sub-agent is its own; a model holds no authority of its own.
  agent: () => [],
  tools: (child, parent) => toolsWiderThan(child, parent),
  grants: (child, parent) => [
    ...missingFrom(child.tools, parent.tools, 'granted tool'),
    ...missingFrom(child.subagents, parent.subagents, 'granted sub-agent'),
    ...missingFrom(child.hosts, parent.hosts, 'granted host'),
    ...missingFrom(child.databases, parent.databases, 'granted database'),
    ...missingFrom(child.commands ?? [], parent.commands ?? [], 'granted program'),
    ...tablesWiderThan(child, parent),
  ],
  // Trusting more sources than the parent would let a sub-agent steer actions with data the user never vouched for.
  trust: (child, parent) => (jsonEqual(child ?? null, parent ?? null) ? [] : ['trusts other sources than the parent']),
  // More rules is narrower: every rule of the parent must still apply.
  policies: (child, parent) => missingFrom(parent, child, 'rule').map((m) => m.replace('is not the parent\'s', 'of the parent is dropped')),
  policyPacks: (child, parent) =>
    missingFrom(effectivePolicyPacks({ policyPacks: parent }), effectivePolicyPacks({ policyPacks: child }), 'pack').map((m) => m.replace("is not the parent's", 'of the parent is dropped')),
  limits: (child, parent) =>
    (Object.keys(LIMIT_NARROWING) as (keyof Limits)[])
      .filter((key) => !(LIMIT_NARROWING[key] as LimitRule<unknown>).within(child[key], parent[key]))
      .map((key) => `limits.${key} ${String(child[key])} is wider than the parent's ${String(parent[key])}`),
  resources: (child, parent) => (jsonEqual(child, parent) ? [] : ['resources differ from the parent\'s']),
  subagents: (child, parent) => (jsonEqual(child, parent) ? [] : ['sub-agent declarations differ from the parent\'s']),
  // Only the root takes the pre-task snapshot.
  snapshot: (child) => (child ? ['takes its own snapshot'] : []),
  // Which workflow code path runs it: no authority (a sub-agent always runs on the original loop).
  dataFlow: () => [],
  // The task file is a control the whole tree is kept from; a sub-agent names its root's.
  source: (child, parent) => (child === parent ? [] : ['names another task file']),
  // Claims are verified by the root, with the root's verifiers: a sub-agent has no say in how.
  attestation: (child, parent) => (jsonEqual(child ?? null, parent ?? null) ? [] : ["attestation differs from the parent's"]),
};

/** Every way `child` is wider than `parent`, as `<field>: <why>` (empty when it is within). */
export function wideningsOfTask(child: Task, parent: Task): string[] {
  const out: string[] = [];
  for (const key of Object.keys(TASK_FIELD_NARROWING) as (keyof Task)[]) {
    const check = TASK_FIELD_NARROWING[key] as FieldCheck<typeof key>;
    for (const why of check(child[key] as never, parent[key] as never)) out.push(`${key}: ${why}`);
  }
  return out;
}
