/**
 * The recovery side of a task's life. Agents' file changes live in a copy-on-write overlay of the
 * workspace until the task tree completes, and SQL changes are journaled with before-images; a
 * task that ends any other way is rolled back by compensations, run in reverse as activities.
 *
 * Invariant: every function here is idempotent, because Temporal may run an activity again after
 * a worker dies at any point.
 */
import { RecoveryError } from '../errors';
import { journalPathOf, taskKeyOf } from '../recovery/recovery-paths';
import { hydrateJournal } from '../recovery/shared-journal';
import type { Compensation } from '../recovery/compensation';
import { runCompensation, type CompensationOutcome } from '../recovery/run-compensation';
import { commitOverlay } from '../recovery/workspace-overlay';
import { restoreSnapshot, snapshotWorkspace } from '../recovery/workspace-snapshot';
import type { Task } from '../task/task-schema';
import type { ActivityDeps } from './index';
import { executeToolCall, protectedSetForCall } from './run-tool';
import { atActivityBoundary } from './to-application-failure';
import { mcpCompensationArgs } from '../executors/mcp-executor';

export interface RecoveryTaskInput {
  /** The workflow id of the task the user started (the root of the sub-agent tree). */
  rootWorkflowId: string;
  /** The root's first run id: names the run's own recovery state (absent in trees started before). */
  rootRunId?: string;
  task: Task;
}

export interface CompensateInput extends RecoveryTaskInput {
  compensation: Compensation;
  /** The task's grant, for compensating tools (they run in the sandbox like any call). */
  grantId?: string;
}

function stateDirOfDeps(deps: ActivityDeps): string {
  if (deps.stateDir === undefined) throw new TypeError('this worker was created without a state folder');
  return deps.stateDir;
}

export function createTaskRecoveryActivities(deps: ActivityDeps) {
  return {
    /** Names the task tree's recovery state and, for `snapshot: true`, takes the pre-task snapshot. */
    async prepareTask(input: RecoveryTaskInput): Promise<{ taskKey: string; snapshot: boolean }> {
      return atActivityBoundary(async () => {
        const stateDir = stateDirOfDeps(deps);
        const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
        if (input.task.snapshot) {
          await snapshotWorkspace({
            stateDir,
            taskKey,
            ...(input.task.resources.workspace === undefined ? {} : { workspace: input.task.resources.workspace }),
            databases: input.task.resources.databases,
          });
        }
        return { taskKey, snapshot: input.task.snapshot };
      });
    },

    /** Makes the overlay's files real (atomically per file, snapshotting what they replace). */
    async commitTask(input: RecoveryTaskInput): Promise<{ files: string[]; skipped?: string[] }> {
      return atActivityBoundary(async () => {
        if (input.task.resources.workspace === undefined) return { files: [] };
        const result = await commitOverlay({
          stateDir: stateDirOfDeps(deps),
          taskKey: taskKeyOf(input.rootWorkflowId, input.rootRunId),
          workspace: input.task.resources.workspace,
          protected: await protectedSetForCall(deps, input.task),
          ...(input.task.resources.allowHostCode === undefined ? {} : { allowHostCode: input.task.resources.allowHostCode }),
        });
        // Held host-code files are reported with what a commit leaves out (recovery.notCommitted).
        const skipped = [...result.skipped, ...result.held];
        return { files: result.manifest?.entries.map((e) => e.path) ?? [], ...(skipped.length === 0 ? {} : { skipped }) };
      });
    },

    /** Runs one compensation; running it again is a no-op. */
    async compensate(input: CompensateInput): Promise<CompensationOutcome> {
      return atActivityBoundary(async () => {
        const stateDir = stateDirOfDeps(deps);
        const taskKey = taskKeyOf(input.rootWorkflowId, input.rootRunId);
        // The SQL may have run on another worker: take its journaled images first.
        if (deps.shared !== undefined) await hydrateJournal(deps.shared.db, { journal: journalPathOf(stateDir, taskKey), journalKey: taskKey });
        return runCompensation(input.compensation, {
          stateDir,
          taskKey,
          journal: journalPathOf(stateDir, taskKey),
          databases: input.task.resources.databases,
          runTool: async (tool, toolInput) => {
            if (input.grantId === undefined) throw new RecoveryError('ERR_COMPENSATION_FAILED', `cannot run compensating tool ${tool} without a task grant`);
            const call = await executeToolCall(deps, {
              rootWorkflowId: input.rootWorkflowId,
              ...(input.rootRunId === undefined ? {} : { rootRunId: input.rootRunId }),
              callId: `compensate:${input.compensation.kind === 'tool' ? input.compensation.callId : tool}`,
              grantId: input.grantId,
              maxCredentialTtlMs: 60_000,
              task: input.task,
              tool,
              // An MCP tool's undo takes its own arguments, mapped from the original call by the task file.
              args: (input.compensation.kind === 'tool' ? mcpCompensationArgs(input.task, input.compensation.input.original) : undefined) ?? (toolInput as Record<string, unknown>),
            });
            return call.output;
          },
        });
      });
    },

    /** Puts the workspace and databases back to the pre-task snapshot (when compensation alone cannot). */
    async restorePreTaskSnapshot(input: RecoveryTaskInput): Promise<{ restored: number; deleted: number; databases: number }> {
      return atActivityBoundary(async () => {
        const result = await restoreSnapshot({
          stateDir: stateDirOfDeps(deps),
          taskKey: taskKeyOf(input.rootWorkflowId, input.rootRunId),
          ...(input.task.resources.workspace === undefined ? {} : { workspace: input.task.resources.workspace }),
          databases: true,
          force: true,
        });
        return { restored: result.restored.length, deleted: result.deleted.length, databases: result.databases.length };
      });
    },
  };
}
