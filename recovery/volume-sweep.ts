/**
 * Releasing the workspace volumes of task trees whose workflow closed without running its saga.
 *
 * A cancelled task releases its volume itself (the saga); a terminated one (`temporal workflow
 * terminate`, the Web UI, an execution timeout, a reset) runs no workflow code, so its ext4 image
 * would stay loop-mounted under `<state>/overlays/<task key>` and on disk for ever. When a volume
 * is made, the tree's root workflow id and first run id are written next to its image
 * (`<task key>.owner.json`); the worker sweeps at start and every VOLUME_SWEEP_INTERVAL_MS: a
 * volume whose tree is closed is unmounted (lazily if a program still holds it) and deleted, with
 * its uncommitted overlay (a closed task commits nothing more).
 *
 * A tree counts as closed when the newest run under its workflow id is closed, or is open but of
 * another chain (another first run id: only one run per workflow id is open at a time). A workflow
 * Temporal does not know (past retention, or a worker pointed at another server or namespace)
 * keeps its volume: the sweep never deletes on a guess. Volumes made before records were written
 * (no owner record) are kept too.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isGrpcNotFound } from '../temporal/grpc-status';
import { overlayVolumeImageOf, releaseOverlayVolume } from './overlay-volume';
import { overlayPathsOf, taskKeyOf } from './recovery-paths';

/** How often a worker sweeps, ms (and once at start). */
export const VOLUME_SWEEP_INTERVAL_MS = 5 * 60_000;

const OwnerSchema = z.strictObject({ workflowId: z.string().min(1), runId: z.string().min(1) });
export type VolumeOwner = z.infer<typeof OwnerSchema>;

/** What the sweep needs to know of a workflow id's newest run; undefined when Temporal does not know it. */
export type DescribeNewestRun = (workflowId: string) => Promise<{ open: boolean; firstRunId: string } | undefined>;

/** `<stateDir>/overlay-volumes/<taskKey>.owner.json`. */
export function volumeOwnerFileOf(stateDir: string, taskKey: string): string {
  return `${overlayVolumeImageOf(stateDir, taskKey).slice(0, -'.ext4'.length)}.owner.json`;
}

/** Records the tree that owns the volume of `taskKey(workflowId, runId)` (before the volume is made). */
export function recordVolumeOwner(stateDir: string, owner: VolumeOwner): void {
  const file = volumeOwnerFileOf(stateDir, taskKeyOf(owner.workflowId, owner.runId));
  if (fs.existsSync(file)) return;
  fs.mkdirSync(join(stateDir, 'overlay-volumes'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(owner), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * A DescribeNewestRun over Temporal's WorkflowService (a `NativeConnection`'s or a `Client`'s
 * `workflowService`): DescribeWorkflowExecution without a run id answers for the newest run.
 */
export function describeNewestRunVia(
  service: { describeWorkflowExecution(request: { namespace: string; execution: { workflowId: string } }): Promise<{ workflowExecutionInfo?: { status?: number | null; firstRunId?: string | null } | null }> },
  namespace: string,
): DescribeNewestRun {
  return async (workflowId) => {
    try {
      const described = await service.describeWorkflowExecution({ namespace, execution: { workflowId } });
      // WORKFLOW_EXECUTION_STATUS_RUNNING is 1 (temporal.api.enums.v1.WorkflowExecutionStatus).
      return { open: described.workflowExecutionInfo?.status === 1, firstRunId: described.workflowExecutionInfo?.firstRunId ?? '' };
    } catch (error) {
      // Unknown here; anything else (the server unreachable) fails the sweep.
      if (isGrpcNotFound(error)) return undefined;
      throw error;
    }
  };
}

/**
 * Releases the volumes under `stateDir` whose tree is closed. Returns the task keys released.
 * A volume whose record is unreadable, or whose workflow Temporal cannot describe, is kept.
 */
export async function sweepClosedVolumes(stateDir: string, describe: DescribeNewestRun): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(join(stateDir, 'overlay-volumes'));
  } catch {
    return [];
  }
  const released: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.owner.json'))) {
    const taskKey = name.slice(0, -'.owner.json'.length);
    let owner: VolumeOwner;
    try {
      owner = OwnerSchema.parse(JSON.parse(fs.readFileSync(join(stateDir, 'overlay-volumes', name), 'utf8')));
      if (taskKeyOf(owner.workflowId, owner.runId) !== taskKey) continue;
    } catch {
      continue;
    }
    const newest = await describe(owner.workflowId);
    if (newest === undefined || (newest.open && newest.firstRunId === owner.runId)) continue;
    await releaseOverlayVolume(stateDir, taskKey);
    // The mount point, empty once unmounted (nothing else of the tree lives there).
    try {
      fs.rmdirSync(overlayPathsOf(stateDir, taskKey).dir);
    } catch {
      // Not empty (a plain folder moved aside) or gone: left for the recovery CLI.
    }
    fs.rmSync(join(stateDir, 'overlay-volumes', name), { force: true });
    released.push(taskKey);
  }
  return released;
}
