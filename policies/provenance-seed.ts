/**
 * What a decision counts as given by the user, and what a sub-agent inherits of it.
 *
 * The user's values are their words (the intent) and what they wrote in the task file: their own
 * address, the values they declare (`trust.values`), the hosts they list, the intents they wrote
 * for sub-agents. A sub-agent does not get its own intent as "the user's words": the parent agent
 * wrote that intent (`spawn: courier, intent: "fetch http://.../collect?d=..."`). So a sub-agent
 * inherits the root's user values unchanged, plus, as trusted, the values of its intent that its
 * parent had from trusted data; every other value in its intent has the provenance of what the
 * parent had read (issue 9, intent laundering through `spawn.intent`).
 *
 * Pure: workflow code may import this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import type { Task } from '../task/task-schema';

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('policies/provenance-seed', () => {
  const ProvenanceSeedSchema = z.strictObject({
    /** The root user's intent first, then their declared values. */
    userTexts: z.array(z.string()).min(1),
    /** Normalised atoms (provenance.ts) the sub-agent may treat as trusted. */
    trustedAtoms: z.array(z.string()).default([]),
  });
  return { ProvenanceSeedSchema };
});

export const { ProvenanceSeedSchema } = schemas;
export type ProvenanceSeed = z.infer<typeof ProvenanceSeedSchema>;

/** The user's values in a task the user wrote: intent first. Not for a derived sub-agent task (its intent is the parent's). */
export function userValuesOf(task: Task): string[] {
  const values = [task.intent, task.user, ...(task.trust?.values ?? []), ...task.resources.hosts, ...task.grants.hosts];
  for (const sub of Object.values(task.subagents)) values.push(sub.intent);
  return values;
}

/** The seed a run decides with: its own, or the root's values when it has none (the task the user started). */
export function seedOf(task: Task, seed: ProvenanceSeed | undefined): ProvenanceSeed {
  return seed ?? { userTexts: userValuesOf(task), trustedAtoms: [] };
}
