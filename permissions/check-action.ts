/**
 * The grant check every proposed action passes before anything runs. Pure and deterministic:
 * it runs inside the workflow, so the decision is part of the recorded history.
 *
 * Invariant: an action is allowed only if the task both declares the tool (or sub-agent) and
 * grants it. Declaring is not granting; a model can name anything.
 */
import type { ErrorCode } from '../errors';
import type { SpawnAction, ToolAction } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { toolCatalogOf } from '../tools/tool-catalog';

export type ActionCheck =
  | { decision: 'allow'; reason: string }
  | { decision: 'deny'; reason: string; code: ErrorCode };

export function declaredToolNames(task: Task): string[] {
  // The catalog: built-ins, user tools and the MCP tools pinned when the task started.
  return toolCatalogOf(task).tools.map((t) => t.name);
}

export function checkToolAction(task: Task, action: ToolAction): ActionCheck {
  if (!declaredToolNames(task).includes(action.tool)) {
    return { decision: 'deny', code: 'ERR_TOOL_UNKNOWN', reason: `tool "${action.tool}" is not declared by this task` };
  }
  if (!task.grants.tools.includes(action.tool)) {
    return { decision: 'deny', code: 'ERR_TOOL_NOT_GRANTED', reason: `tool "${action.tool}" is not granted to this task` };
  }
  return { decision: 'allow', reason: `tool "${action.tool}" is granted` };
}

export function checkSpawnAction(task: Task, action: SpawnAction, depth: number): ActionCheck {
  if (task.subagents[action.subagent] === undefined) {
    return { decision: 'deny', code: 'ERR_SUBAGENT_UNKNOWN', reason: `sub-agent "${action.subagent}" is not declared by this task` };
  }
  if (!task.grants.subagents.includes(action.subagent)) {
    return { decision: 'deny', code: 'ERR_SUBAGENT_NOT_GRANTED', reason: `spawning sub-agent "${action.subagent}" is not granted to this task` };
  }
  if (depth + 1 > task.limits.maxDepth) {
    return {
      decision: 'deny',
      code: 'ERR_SUBAGENT_DEPTH',
      reason: `sub-agent "${action.subagent}" would run at depth ${depth + 1}, over the limit of ${task.limits.maxDepth}`,
    };
  }
  return { decision: 'allow', reason: `sub-agent "${action.subagent}" is granted` };
}
