/**
 * Which workflow code path a task takes. The data flow (agent-task-flow.ts, issues 12 and 17) is
 * opt-in and carries only part of what the original loop does; the original loop, with every
 * check main has, is the default.
 *
 * Deterministic: a pure function of the workflow input (no Temporal API, no I/O).
 */

/**
 * Whether a task runs on the data flow: only when its task file opts in (`dataFlow: true`), it is
 * a root task (a client's `{ task }`, or the flow's own continued run), and it uses nothing the
 * data flow does not carry yet: sub-agents (their verified handoffs, subagent-handoff.ts), MCP tool
 * sources or an `mcp serve` session, host-code files allowed into the workspace. Every other task
 * runs on the original loop. Decided from the input alone, so replays decide the same.
 */
export function takesDataFlow(rawInput: { task?: unknown }): boolean {
  const task = rawInput.task as
    | {
        dataFlow?: unknown;
        agent?: { model?: { driver?: unknown } };
        tools?: { mcp?: unknown };
        grants?: { subagents?: unknown };
        subagents?: unknown;
        resources?: { allowHostCode?: unknown };
      }
    | undefined;
  if (task?.dataFlow !== true) return false;
  // A sub-agent's input (a handoff, or the older top-level fields) stays on the original loop, which verifies it.
  const given = rawInput as unknown as Record<string, unknown>;
  if (given.handoff !== undefined || (Array.isArray(given.lineage) && given.lineage.length > 0) || (typeof given.depth === 'number' && given.depth > 0)) return false;
  const nonEmpty = (value: unknown) => (Array.isArray(value) ? value.length > 0 : typeof value === 'object' && value !== null && Object.keys(value).length > 0);
  if (task.agent?.model?.driver === 'mcp-client' || nonEmpty(task.tools?.mcp)) return false;
  if (nonEmpty(task.subagents) || nonEmpty(task.grants?.subagents)) return false;
  if (task.resources?.allowHostCode !== undefined) return false;
  return true;
}
