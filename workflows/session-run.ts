/**
 * The loop of an `mcp-client` task: an existing agent, connected through `warden mcp serve`,
 * makes tool calls, and each one becomes a step of this workflow exactly as a model's action
 * would (grant check, policy, approval, per-call credential, execution, compensation). Calls
 * arrive as Updates and are run one at a time, in arrival order; the Update returns the step.
 * The session ends when the client disconnects (signal), at the deadline, or at the step limit.
 *
 * Deterministic code only.
 */
import { ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
import type { StepRecord, TaskResult, ToolAction } from '../task/task-run';
import { toolCatalogOf } from '../tools/tool-catalog';
import { resolvedAnnotations } from '../tools/tool-descriptor';
import { finishRun, type AgentRun } from './agent-run';
import { endSessionSignal, sessionCallUpdate, sessionToolsQuery, type SessionCall, type SessionTool } from './definitions';
import { runAction } from './run-action';

interface QueuedCall {
  id: number;
  call: SessionCall;
}

/** Where an `mcp-client` task's calls arrive; created at the workflow's start so no early call is lost. */
export class SessionInbox {
  readonly #queue: QueuedCall[] = [];
  readonly #results = new Map<number, StepRecord>();
  #nextId = 0;
  #ended: string | undefined;
  #closed = false;
  #ready = false;

  constructor(private readonly run: AgentRun) {
    setHandler(
      sessionCallUpdate,
      async (call) => {
        const id = this.#nextId++;
        this.#queue.push({ id, call });
        await condition(() => this.#results.has(id) || this.#closed);
        const step = this.#results.get(id);
        if (step === undefined) throw ApplicationFailure.nonRetryable(`the task ended (${this.run.state.status}) before the call ran`, 'ERR_SESSION_ENDED');
        return step;
      },
      {
        validator: (call) => {
          if (this.#closed || this.#ended !== undefined) throw new Error('the session has ended');
          if (typeof call?.tool !== 'string' || call.tool === '' || typeof call.args !== 'object' || call.args === null || Array.isArray(call.args)) {
            throw new Error('a session call needs { tool: string, args: object }');
          }
        },
      },
    );
    setHandler(endSessionSignal, ({ reason }) => {
      this.#ended ??= reason ?? 'the client disconnected';
      // A call waiting for approval has nobody left to answer: withdrawn, so the session can end now.
      if (run.patches.sessionEndWithdraws) run.approvals.withdraw(this.#ended);
    });
    setHandler(sessionToolsQuery, () => (this.#ready ? sessionToolsOf(this.run) : null));
  }

  /** Runs calls until the session ends; returns the task's result. */
  async serve(): Promise<TaskResult> {
    const { run } = this;
    const { state } = run;
    this.#ready = true;
    for (;;) {
      if (state.steps.length >= run.task.limits.maxSteps) return finishRun(run, 'limit_exceeded', `step limit of ${run.task.limits.maxSteps} reached`);
      await run.deadline.within(() => condition(() => this.#queue.length > 0 || this.#ended !== undefined));
      const next = this.#queue.shift();
      if (next === undefined) {
        state.final = { answer: `session ended: ${this.#ended ?? 'the client disconnected'}`, claims: [] };
        return finishRun(run, 'completed');
      }
      const turn = state.turn;
      state.turn += 1;
      const first = state.steps.length;
      const action: ToolAction = { type: 'tool', tool: next.call.tool, args: next.call.args, ...(next.call.callId === undefined ? {} : { callId: next.call.callId }) };
      try {
        await runAction(run, action, turn);
      } finally {
        const step = state.steps[first];
        if (step !== undefined) this.#results.set(next.id, step);
      }
    }
  }

  /** No further call is accepted; calls still queued are answered with ERR_SESSION_ENDED. */
  close(): void {
    this.#closed = true;
  }
}

/** The granted tools of the task, as its MCP client is offered them. */
function sessionToolsOf(run: AgentRun): SessionTool[] {
  return toolCatalogOf(run.task)
    .tools.filter((tool) => run.task.grants.tools.includes(tool.name))
    .map((tool) => ({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema, annotations: resolvedAnnotations(tool) }));
}
