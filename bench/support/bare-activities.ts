/** The bare workflow's one activity: the scripted model turn, then the trivial tool, in-process. */

const AsyncFunction = (async () => undefined).constructor as new (...args: string[]) => (input: unknown) => Promise<unknown>;

/** The same tool source the guarded task declares. */
export const ADD_TOOL_SOURCE = 'return input.a + input.b;';

const add = new AsyncFunction('input', ADD_TOOL_SOURCE);

/**
 * Turn `turn` of a script of `steps` calls of `add {a: turn, b: 1}` and a final answer. A tool
 * step says when (ms since the epoch, sub-millisecond, this process's clock) its tool started: the
 * bench's step cycle is read on the clock the guarded side's is (its `execute_tool` custody spans).
 */
export async function bareAgentStep(turn: number, steps: number): Promise<{ output?: unknown; toolStartedAt?: number; final?: string }> {
  if (turn >= steps) return { final: 'done' };
  const toolStartedAt = performance.timeOrigin + performance.now();
  return { output: await add({ a: turn, b: 1 }), toolStartedAt };
}
