/**
 * The search attributes an agent task carries, so the Temporal UI (and `temporal workflow list
 * --query`) can find tasks by who, which agent, which model, which rule packs and how they
 * ended: `WardenUser = "alice@example.com" AND WardenStatus = "denied"`.
 *
 * | attribute     | type         | value                                                         |
 * |---------------|--------------|---------------------------------------------------------------|
 * | `WardenUser`  | Keyword      | the human the agent acts for (`task.user`)                    |
 * | `WardenAgent` | Keyword      | the agent's name                                              |
 * | `WardenModel` | Keyword      | the model id                                                  |
 * | `WardenPacks` | KeywordList  | the policy packs that apply                                   |
 * | `WardenStatus`| Keyword      | `running` at start, then the task's end status (`completed`, `denied`, ...) |
 *
 * They must be registered in the namespace: the embedded server does it (see
 * `temporal/search-attribute-registry.ts`); on a cluster, run the commands in `temporal/README.md`.
 * A starter sets them only when the namespace has them (an unregistered attribute fails the
 * start), and the workflow updates `WardenStatus` only when it started with it.
 *
 * Values are visible to anyone who can list workflows and are not encoded by a payload codec:
 * only the user's id and names go here, never the intent or arguments.
 */
import { defineSearchAttributeKey, type SearchAttributePair, type SearchAttributeType } from '@temporalio/common';
import type { TaskStatus } from '../task/task-run';
import { policyPacksOf, type Task } from '../task/task-schema';
import { cutText } from '../cut-text';

export const WARDEN_SEARCH_ATTRIBUTES = {
  user: defineSearchAttributeKey('WardenUser', 'KEYWORD'),
  agent: defineSearchAttributeKey('WardenAgent', 'KEYWORD'),
  model: defineSearchAttributeKey('WardenModel', 'KEYWORD'),
  packs: defineSearchAttributeKey('WardenPacks', 'KEYWORD_LIST'),
  status: defineSearchAttributeKey('WardenStatus', 'KEYWORD'),
} as const;

/** Every Warden search attribute with its type, for registration. */
export const WARDEN_SEARCH_ATTRIBUTE_TYPES: Readonly<Record<string, SearchAttributeType>> = Object.fromEntries(
  Object.values(WARDEN_SEARCH_ATTRIBUTES).map((key) => [key.name, key.type]),
);

/** Keyword values are capped by Temporal (2 KiB by default); a user id longer than that is cut. */
const MAX_KEYWORD = 512;
const keyword = (value: string) => cutText(value, MAX_KEYWORD);

/**
 * The search attributes of a task as it starts, restricted to `registered` (the names the
 * namespace knows; all of them when omitted).
 */
export function taskSearchAttributes(task: Task, registered?: ReadonlySet<string>): SearchAttributePair[] {
  const { user, agent, model, packs, status } = WARDEN_SEARCH_ATTRIBUTES;
  const pairs: SearchAttributePair[] = [
    { key: user, value: keyword(task.user) },
    { key: agent, value: keyword(task.agent.name) },
    { key: model, value: keyword(task.agent.model.id) },
    { key: packs, value: policyPacksOf(task).map(keyword) },
    { key: status, value: 'running' satisfies TaskStatus },
  ];
  return registered === undefined ? pairs : pairs.filter((pair) => registered.has(pair.key.name));
}
