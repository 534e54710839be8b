/**
 * `warden baseline learn|list|show|forget`: what normal looks like per agent, learnt from past
 * runs and kept in the state store, where every worker's monitor reads it when a task begins.
 */
import { WardenError } from '../../errors';
import { LEARN_MAX_SCORE, learnBaselines, type AgentBaseline } from '../../monitoring/baseline';
import { createBaselineStore } from '../../monitoring/baseline-store';
import { collectTaskResults, readTaskResultsFile } from '../../monitoring/collect-task-results';
import { DEFAULT_MIN_TASKS } from '../../monitoring/score-action';
import { stateDirOf } from '../../state-dir';
import { openStateStore, workerIdOf } from '../../state/state-store';
import { durationToMs } from '../../task/duration';
import type { TaskResult } from '../../task/task-run';
import { DurationSchema } from '../../task/task-schema';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { argumentCountText, parseCommandArgs } from '../parse-command-args';
import { withRunningServer } from '../temporal-client';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const BASELINE_USAGE = `usage: warden baseline learn [--since <duration>] [--limit <n>] [--agent <name>]... [--from <results.json>]... [--max-score <0-100>] [--json]
       warden baseline list [--json]
       warden baseline show <agent> [--json]
       warden baseline forget <agent>

  learn   learns each agent's baseline from past runs: the results of completed tasks in Temporal
          (default), or files of \`warden run --json\` results (--from). Runs that did not complete,
          raised an alert or hold an action scored above --max-score are left out (each is listed).
          Replaces the baselines of the agents it saw.
  list    the agents with a baseline: runs learnt, tools, hosts
  show    one agent's baseline
  forget  removes one agent's baseline (its tasks then get the hard signals only)

  A baseline counts once it has learnt ${DEFAULT_MIN_TASKS} runs. Kept in the state store (WARDEN_DATABASE_URL,
  else <state folder>/state.db).

  --since <duration>  only runs started in the last 12h, 7d, 30d... (learn)
  --limit <n>         at most n tasks, newest first (learn; default 1000)
  --agent <name>      keep only these agents' baselines (learn; repeatable)
  --from <file>       learn from this file of results instead of Temporal (repeatable)
  --max-score <n>     leave out runs with an action scored above n (learn; default ${LEARN_MAX_SCORE})`;

function sinceOf(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  if (days !== null) return Number(days[1]) * 86_400_000;
  if (!DurationSchema.safeParse(text).success) throw new RangeError(`--since takes a duration such as 12h or 30d, not "${text}"`);
  return durationToMs(text);
}

function summary(b: AgentBaseline): string {
  const status = b.tasks >= DEFAULT_MIN_TASKS ? `${b.tasks} runs` : `${b.tasks} runs (learning: counts from ${DEFAULT_MIN_TASKS})`;
  // The agent's name, its tools and the hosts it reached are what tasks recorded: others' text (../../terminal-text.ts).
  return terminalLine(`${b.agent}: ${status}; tools ${Object.keys(b.tools).join(', ') || '-'}; hosts ${b.hosts.join(', ') || '-'}; sub-agents ${b.subagents.join(', ') || '-'}; learnt ${b.learnedAt}`);
}

export async function baselineCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('baseline', BASELINE_USAGE, argv, io, {
    since: { type: 'string' },
    limit: { type: 'string' },
    agent: { type: 'string', multiple: true },
    from: { type: 'string', multiple: true },
    'max-score': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [action, ...rest] = args.positionals;
  const usage = (message: string) => {
    io.stderr(`${terminalLine(`warden baseline: ${message}`)}\n${BASELINE_USAGE}\n`);
    return EXIT.usage;
  };
  if (action === undefined || !['learn', 'list', 'show', 'forget'].includes(action)) return usage('expected learn, list, show or forget');
  if ((action === 'learn' || action === 'list') && rest.length > 0) return usage(argumentCountText(action, 0, rest));
  if ((action === 'show' || action === 'forget') && rest.length !== 1) return usage(`${action} takes one agent name`);
  let since: string | undefined;
  let limit: number | undefined;
  let maxScore: number | undefined;
  try {
    if (args.values['max-score'] !== undefined) {
      maxScore = Number(args.values['max-score']);
      if (!Number.isInteger(maxScore) || maxScore < 0 || maxScore > 100) throw new RangeError(`--max-score takes a whole number from 0 to 100, not "${args.values['max-score']}"`);
    }
    if (args.values.since !== undefined) since = new Date(Date.now() - sinceOf(args.values.since)).toISOString();
    if (args.values.limit !== undefined) {
      limit = Number(args.values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`--limit takes a positive whole number, not "${args.values.limit}"`);
    }
  } catch (error) {
    return usage((error as Error).message);
  }
  const stateDir = stateDirOf(io.env);
  try {
    if (action === 'learn') {
      let results: TaskResult[];
      let unreadable: string[] = [];
      if (args.values.from !== undefined && args.values.from.length > 0) {
        results = (await Promise.all(args.values.from.map(readTaskResultsFile))).flat();
      } else {
        ({ results, unreadable } = await withRunningServer(io, (client) => collectTaskResults(client, { ...(since === undefined ? {} : { since }), ...(limit === undefined ? {} : { limit }) })));
      }
      const learnt = learnBaselines(results, new Date().toISOString(), maxScore === undefined ? {} : { maxScore });
      const wanted = args.values.agent;
      const baselines = wanted === undefined ? learnt.baselines : learnt.baselines.filter((b) => wanted.includes(b.agent));
      const state = await openStateStore({ stateDir, env: io.env });
      try {
        await createBaselineStore(state.db).put(baselines, workerIdOf(stateDir, io.env));
      } finally {
        await state.close();
      }
      if (args.values.json) {
        io.stdout(`${terminalJson({ learnt: learnt.learnt, skipped: learnt.skipped, unreadable, baselines }, 2)}\n`);
      } else {
        io.stdout(`${terminalLine(`learnt from ${learnt.learnt} run(s); skipped ${learnt.skipped.length}${unreadable.length > 0 ? `; ${unreadable.length} unreadable` : ''}`)}\n`);
        for (const b of baselines) io.stdout(`  ${summary(b)}\n`);
        for (const skip of learnt.skipped) io.stdout(`${terminalLine(`  skipped ${skip.workflowId}: ${skip.reason}`)}\n`);
        if (baselines.length === 0) io.stdout('  no agent baselines (nothing to learn from)\n');
      }
      return EXIT.ok;
    }
    const state = await openStateStore({ stateDir, env: io.env });
    try {
      const store = createBaselineStore(state.db);
      if (action === 'list') {
        const all = await store.list();
        if (args.values.json) io.stdout(`${terminalJson(all, 2)}\n`);
        else io.stdout(all.length === 0 ? 'no baselines (warden baseline learn)\n' : all.map((b) => `${summary(b)}\n`).join(''));
        return EXIT.ok;
      }
      const agent = rest[0]!;
      if (action === 'forget') {
        if (!(await store.remove(agent))) {
          io.stderr(`${terminalLine(`warden baseline: no baseline of agent ${agent}`)}\n`);
          return EXIT.failed;
        }
        io.stdout(`${terminalLine(`forgot the baseline of agent ${agent}`)}\n`);
        return EXIT.ok;
      }
      const baseline = await store.get(agent);
      if (baseline === undefined) {
        io.stderr(`${terminalLine(`warden baseline: no baseline of agent ${agent} (warden baseline learn)`)}\n`);
        return EXIT.failed;
      }
      io.stdout(args.values.json ? `${terminalJson(baseline, 2)}\n` : `${summary(baseline)}\n${terminalJson(baseline.tools, 2)}\n`);
      return EXIT.ok;
    } finally {
      await state.close();
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden baseline: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
