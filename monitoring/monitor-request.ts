/**
 * What a task's monitor starts from is read by (`beginMonitoring`, or a data-flow root's
 * `placeTask`): the agent whose baseline applies and the task's response-rule sources.
 *
 * Pure and deterministic: the workflow builds it for the local activity, the placing worker from
 * the task it was handed, so both read the same setup.
 */
import type { Task } from '../task/task-schema';

export interface BeginMonitoringInput {
  workflowId: string;
  /** The agent's name: its baseline's key. */
  agent: string;
  /** The task's policy packs (default: the packs every task gets). */
  packs?: string[];
  sentences: string[];
  /**
   * A sub-agent's grant: its `act` chain (RFC 8693, user → agent → sub-agents, signed by Warden)
   * names its ancestors; when its own baseline is not usable, the nearest usable one's hosts
   * watch it (`treeHosts`).
   */
  grantId?: string;
}

/** The monitor request of `task` run as `workflowId` (no sub-agent grant: the caller adds it). */
export function monitorRequestOf(workflowId: string, task: Pick<Task, 'agent' | 'policyPacks' | 'policies'>): BeginMonitoringInput {
  return {
    workflowId,
    agent: task.agent.name,
    ...(task.policyPacks === undefined ? {} : { packs: [...task.policyPacks] }),
    sentences: [...task.policies],
  };
}
