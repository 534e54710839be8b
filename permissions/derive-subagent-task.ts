/**
 * Builds the task a sub-agent runs under. Pure: it runs in the workflow.
 *
 * Invariant: the derived task is never wider than its parent on any field
 * (permissions/task-narrowing.ts says what that means per field): it is judged by every pack and
 * rule of every ancestor plus its own, every limit is the narrower of its own and the parent's,
 * its tools are the parent's (a same-named tool keeps the parent's definition, narrowed), it
 * works on the parent's resources and takes no snapshot of its own. Its grants are the ones it
 * declares: a request wider than the parent's is refused by name when its grant is delegated
 * (identity/delegation.ts), never silently narrowed.
 */
import { LimitsSchema, type Task } from '../task/task-schema';
import { narrowSubagentTables, narrowSubagentTools } from '../tools/subagent-tools';
import { effectivePolicyPacks, narrowLimits } from './task-narrowing';

/**
 * Where a limit the sub-agent leaves out comes from: its parent (what task files say), or, for
 * runs recorded before patch `warden-subagent-limits-inherited` replaying, the limits schema's
 * defaults, as zod filled them in then.
 */
export type UnnamedLimits = 'parent' | 'schema-defaults';

/**
 * The task sub-agent `name` of `parent` runs under, given `intent` (its declared intent when
 * undefined). Throws TypeError when `parent` declares no such sub-agent.
 */
export function deriveSubagentTask(parent: Task, name: string, intent: string | undefined, unnamedLimits: UnnamedLimits = 'parent'): Task {
  const sub = parent.subagents[name];
  if (sub === undefined) throw new TypeError(`sub-agent "${name}" is not declared`);
  const ownLimits = unnamedLimits === 'parent' ? sub.limits : LimitsSchema.partial().parse(sub.limits);
  const tools = narrowSubagentTools(parent.tools, sub.tools);
  const parentPacks = effectivePolicyPacks(parent);
  return {
    user: parent.user,
    intent: intent ?? sub.intent,
    agent: sub.agent,
    // Only tools the parent declares: one it does not have could never be granted anyway.
    tools: {
      builtin: tools.builtin.filter((t) => parent.tools.builtin.includes(t)),
      custom: tools.custom.filter((t) => parent.tools.custom.some((own) => own.name === t.name)),
    },
    // Table grants only narrow; the trust the user declared holds for the whole task tree.
    grants: withTables(sub.grants, narrowSubagentTables(parent.grants, sub.grants)),
    ...(parent.trust === undefined ? {} : { trust: parent.trust }),
    policies: [...parent.policies, ...sub.policies],
    policyPacks: [...parentPacks, ...(sub.policyPacks ?? []).filter((p) => !parentPacks.includes(p))],
    limits: narrowLimits(parent.limits, ownLimits),
    resources: parent.resources,
    subagents: parent.subagents,
    // The task tree has one pre-task snapshot, taken by the root.
    snapshot: false,
    ...(parent.source === undefined ? {} : { source: parent.source }),
    // Claims of the whole tree are verified by the root, with the root's verifiers.
    ...(parent.attestation === undefined ? {} : { attestation: parent.attestation }),
  };
}

function withTables(grants: Task['grants'], tables: Task['grants']['tables']): Task['grants'] {
  const { tables: _own, ...rest } = grants;
  return tables === undefined ? rest : { ...rest, tables };
}
