/**
 * What a call of a task may never open or change (worker/warden-resources.ts), in a module of its
 * own so the policy check (check-policy.ts) and the tool call (run-tool.ts) read the same set.
 */
import type { Task } from '../task/task-schema';
import { protectedSetOf, realPathOf, wardenKeyFiles, wardenResourcesOf } from '../worker/warden-resources';
import { approverKeyFiles } from '../identity/approver-registry';
import type { ActivityDeps } from './index';

/**
 * What a call of `task` may never open or change, as the capabilities and the OS sandbox take it
 * (worker/warden-resources.ts): the state folder and the worker's other resources, the key files
 * and approver key files as they are now (keys rotate), and the task's own controls.
 */
export async function protectedSetForCall(deps: ActivityDeps, task: Task): Promise<{ folders: string[]; files: string[]; readOnly: string[] }> {
  const stateDir = deps.stateDir!;
  const resources = deps.wardenResources ?? wardenResourcesOf({ stateDir, env: deps.env ?? process.env });
  const keyFiles = [...wardenKeyFiles(stateDir, deps.env ?? process.env), ...(deps.approvers === undefined ? [] : await approverKeyFiles(deps.approvers))];
  const set = protectedSetOf(resources, keyFiles, task);
  return { ...set, folders: [...new Set([realPathOf(stateDir), ...set.folders])] };
}
