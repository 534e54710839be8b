/**
 * `warden policy test <pack> --against <workflowId...>`: what a pack would have decided on the
 * actions of past runs, before it goes live. Runs are read from Temporal (input and result).
 */
import { agentTaskResult } from '../../client/start-agent-task';
import { parseCommandArgs, type ParsedCommandArgs } from '../parse-command-args';
import { defaultPayloadConverter } from '@temporalio/common';
import { WardenError } from '../../errors';
import { backtestRun, summarizeBacktest, type BacktestStep } from '../../policies/backtest';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import type { AgentTaskInput, TaskResult } from '../../task/task-run';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { withRunningServer } from '../temporal-client';
import { describeTask } from '../../client/task-not-found';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const POLICY_TEST_USAGE = `usage: warden policy test <pack...> --against <workflowId>... [--json]

  Re-evaluates every recorded action of the given runs (and their sub-agents) under the packs and
  reports what they would have allowed, denied or held for approval. Packs come first; every
  word after --against is a workflow id (--against may also be repeated).
  Exit 0 when no decision changed, 1 when one did (or a run cannot be read), 2 for bad usage.`;

/** Whether the pack decides a recorded step differently from the run itself. */
export function decisionChanged(step: BacktestStep): boolean {
  return step.decision !== (step.recorded.policy ?? step.recorded.decision);
}

/**
 * Packs and workflow ids from the command line, in order: positionals before the first
 * --against are packs, those after it are workflow ids.
 */
export function packsAndRuns(tokens: ParsedCommandArgs<unknown>['tokens']): { packs: string[]; against: string[] } {
  const packs: string[] = [];
  const against: string[] = [];
  let afterAgainst = false;
  for (const token of tokens) {
    if (token.kind === 'option' && token.name === 'against') {
      afterAgainst = true;
      if (token.value !== undefined) against.push(token.value);
    } else if (token.kind === 'positional') (afterAgainst ? against : packs).push(token.value);
  }
  return { packs, against };
}

export async function policyTestCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('policy test', POLICY_TEST_USAGE, argv, io, { against: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  const { packs, against } = packsAndRuns(args.tokens);
  if (packs.length === 0 || against.length === 0) {
    io.stderr(`warden policy test: expected a pack and at least one --against <workflowId>\n${POLICY_TEST_USAGE}\n`);
    return EXIT.usage;
  }
  try {
    const engine = loadPolicyEngine({ packs });
    const steps: BacktestStep[] = await withRunningServer(io, async (client) => {
      const all: BacktestStep[] = [];
      for (const workflowId of against) {
        const handle = client.workflow.getHandle(workflowId);
        const description = await describeTask(client, workflowId);
        if (description.status.name === 'RUNNING') throw new WardenError('ERR_CONFIG_INVALID', `${workflowId} is still running; backtest finished runs`);
        const history = await handle.fetchHistory();
        const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
        const payload = started?.input?.payloads?.[0];
        if (payload === undefined) throw new WardenError('ERR_CONFIG_INVALID', `${workflowId} has no recorded task input`);
        const input = defaultPayloadConverter.fromPayload<AgentTaskInput>(payload);
        // A run that did not complete closes as failed and carries its result (workflows/task-close.ts).
        const result = await agentTaskResult(handle);
        all.push(...backtestRun(engine, input.task, result).steps);
      }
      return all;
    });
    const counts = summarizeBacktest(steps);
    const changed = steps.filter(decisionChanged).length;
    if (args.values.json) io.stdout(`${terminalJson({ packs, against, counts, changed, steps }, 2)}\n`);
    else {
      for (const s of steps) {
        const changed = decisionChanged(s) ? '  <- changed' : '';
        io.stdout(`${terminalLine(`${s.workflowId} #${s.index} ${s.tool}: was ${s.recorded.policy ?? s.recorded.decision}, now ${s.decision.toUpperCase()}${s.rules.length ? ` (${s.rules.join('; ')})` : ''}${changed}`)}\n`);
      }
      io.stdout(`${terminalLine(`${steps.length} action(s): ${counts.allow} allowed, ${counts.deny} denied, ${counts.approval} held for approval; ${changed} decision(s) changed`)}\n`);
    }
    return changed === 0 ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden policy test: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error, error.code === 'ERR_POLICY_PACK_NOT_FOUND' || error.code === 'ERR_POLICY_UNREADABLE' ? EXIT.usage : EXIT.failed);
    }
    throw error;
  }
}
