/**
 * The original loop's history budget: a run that would outgrow Temporal's history limits ends
 * itself, while its saga still fits, instead of being terminated by the server.
 *
 * Why: Temporal terminates a workflow whose history passes its hard limits (server defaults
 * `limit.historyCount.error` 51,200 events and `limit.historySize.error` 50 MiB); a terminated
 * task runs no compensation, returns no result and leaves its overlay and SQL changes half-done.
 * The data flow continues as new long before that (task-flow.ts); the original loop (sub-agents,
 * MCP servers, every task without `dataFlow: true`) does not, and `limits.maxSteps` allows 10,000
 * steps. So before each model turn and each action the loop asks whether what is left, after
 * room for the end of the task (commit or rollback: a few events per compensation), still holds
 * one more step; when it does not, the task ends `limit_exceeded` with ERR_HISTORY_LIMIT and the
 * saga runs as for any other limit.
 *
 * Deterministic: reads `workflowInfo().historyLength` / `historySize`, which Temporal sets from
 * the activation (the same on replay). Behind the `warden-history-budget` patch.
 */
import { workflowInfo } from '@temporalio/workflow';

/** Temporal server defaults (`limit.historyCount.error`, `limit.historySize.error`). */
export const TEMPORAL_HISTORY_EVENT_LIMIT = 51_200;
export const TEMPORAL_HISTORY_BYTES_LIMIT = 50 * 1024 * 1024;

/**
 * Room kept for the end of the task: the steps after the check (one turn's actions, its approval,
 * a spawn), the commit, the grant's revocation, attestation, and per compensation its activity's
 * scheduled/started/completed events plus a workflow task around it.
 */
const RESERVED_EVENTS = 1_000;
const EVENTS_PER_COMPENSATION = 6;
const RESERVED_BYTES = 4 * 1024 * 1024;
const BYTES_PER_COMPENSATION = 16 * 1024;

/** Limits a starter may lower for its own task (a server configured with lower limits, tests). */
export interface HistoryBudgetOptions {
  /** The server's hard event limit (default 51,200). */
  maxHistoryEvents?: number;
  /** The server's hard size limit in bytes (default 50 MiB). */
  maxHistoryBytes?: number;
}

/** What the budget reads: the run's history so far and how many compensations the saga holds. */
export interface HistoryUse {
  events: number;
  bytes: number;
  compensations: number;
}

/**
 * The reason the run must end now, or undefined while it still has room. Pure, for tests.
 *
 * @param use events and bytes of the run's history so far, and the saga's compensations
 * @param options the server's limits (Temporal's defaults when absent)
 * @returns `ERR_HISTORY_LIMIT: …` naming the figure that ran out, or undefined
 */
export function historyBudgetReason(use: HistoryUse, options: HistoryBudgetOptions = {}): string | undefined {
  const maxEvents = options.maxHistoryEvents ?? TEMPORAL_HISTORY_EVENT_LIMIT;
  const maxBytes = options.maxHistoryBytes ?? TEMPORAL_HISTORY_BYTES_LIMIT;
  // Small limits (tests, a server configured tight) keep a share of the room instead.
  const reservedEvents = Math.min(RESERVED_EVENTS, Math.floor(maxEvents / 4)) + EVENTS_PER_COMPENSATION * use.compensations;
  const reservedBytes = Math.min(RESERVED_BYTES, Math.floor(maxBytes / 4)) + BYTES_PER_COMPENSATION * use.compensations;
  const advice = "run long tasks with `dataFlow: true` (it continues as new) or split the work into sub-agents (each has its own history)";
  if (use.events + reservedEvents >= maxEvents) {
    return `ERR_HISTORY_LIMIT: the task's history has ${use.events} events; with room for its ${use.compensations} compensations it would pass Temporal's limit of ${maxEvents}, so it stopped here and rolled back; ${advice}`;
  }
  if (use.bytes + reservedBytes >= maxBytes) {
    return `ERR_HISTORY_LIMIT: the task's history has ${use.bytes} bytes; with room for its ${use.compensations} compensations it would pass Temporal's limit of ${maxBytes} bytes, so it stopped here and rolled back; ${advice}`;
  }
  return undefined;
}

/** Checks the run's own history (workflow code). Disabled (runs from before the patch): never ends a run. */
export class HistoryBudget {
  constructor(
    private readonly enabled: boolean,
    private readonly options: HistoryBudgetOptions = {},
  ) {}

  /** The reason to end the run now, or undefined (see historyBudgetReason). */
  exceeded(compensations: number): string | undefined {
    if (!this.enabled) return undefined;
    const info = workflowInfo();
    return historyBudgetReason({ events: info.historyLength, bytes: info.historySize, compensations }, this.options);
  }
}
