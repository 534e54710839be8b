/**
 * The contract every model driver meets. A driver turns the task and the steps so far into the
 * agent's next proposed actions. Its output is untrusted input to the workflow: nothing a driver
 * returns is executed before the workflow has checked it.
 */
import type { ModelTurn, StepRecord } from '../task/task-run';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import type { Task } from '../task/task-schema';

/** A tool as offered to a model: name, description and JSON-Schema input. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface DriverInput {
  /** The task this agent works on (for a sub-agent: its own derived task). */
  task: Task;
  /** 0-based index of the model turn being asked for. */
  turn: number;
  /** Every step taken so far, in order, with outputs or errors. */
  steps: StepRecord[];
  /** Tools the agent can see (the declared ones; grants are enforced after, not by hiding). */
  tools: ToolSpec[];
  /** Sub-agents declared for this task, with their intents. */
  subagents: { name: string; intent: string }[];
  /** Claims the model stated so far with `state_claim` (each answered in the transcript), oldest first. */
  claims?: StatedClaimRecord[];
}

export interface ModelDriver {
  proposeTurn(input: DriverInput, signal?: AbortSignal): Promise<ModelTurn>;
}
