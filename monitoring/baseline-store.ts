/**
 * Baselines in the state database (`warden_baselines`, one row per agent): written by
 * `warden baseline learn`, read once when a task (or sub-agent) begins. With PostgreSQL every
 * worker reads the same baselines; with SQLite they live in `<state folder>/state.db`.
 *
 * Invariant: a row is parsed against AgentBaselineSchema when read; a row that does not parse is
 * an error naming the agent, never a silently empty baseline (which would mute every signal).
 */
import { MonitorError } from '../errors';
import type { SqlDatabase } from '../state/sql-database';
import { AgentBaselineSchema, type AgentBaseline } from './baseline';

export interface BaselineStore {
  /** Replaces the baselines of the agents given (others are kept). */
  put(baselines: readonly AgentBaseline[], learnedBy: string): Promise<void>;
  get(agent: string): Promise<AgentBaseline | undefined>;
  list(): Promise<AgentBaseline[]>;
  /** Forgets an agent's baseline; false when there was none. */
  remove(agent: string): Promise<boolean>;
}

function parseRow(agent: string, text: string): AgentBaseline {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = AgentBaselineSchema.safeParse(value);
  if (!parsed.success || parsed.data.agent !== agent) {
    throw new MonitorError('ERR_MONITOR_RECORD_INVALID', `the baseline of agent ${agent} in the state database is not a valid baseline; learn it again (warden baseline learn)`, { details: { agent } });
  }
  return parsed.data;
}

export function createBaselineStore(db: SqlDatabase): BaselineStore {
  return {
    async put(baselines, learnedBy) {
      await db.transaction(async (tx) => {
        for (const b of baselines) {
          const baseline = AgentBaselineSchema.parse(b);
          await tx.run(
            `INSERT INTO warden_baselines (agent, tasks, baseline, learned_at, learned_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agent) DO UPDATE SET tasks = excluded.tasks, baseline = excluded.baseline, learned_at = excluded.learned_at, learned_by = excluded.learned_by`,
            [baseline.agent, baseline.tasks, JSON.stringify(baseline), baseline.learnedAt, learnedBy],
          );
        }
      });
    },
    async get(agent) {
      const row = await db.get<{ baseline: string }>('SELECT baseline FROM warden_baselines WHERE agent = $1', [agent]);
      return row === undefined ? undefined : parseRow(agent, row.baseline);
    },
    async list() {
      const rows = await db.all<{ agent: string; baseline: string }>('SELECT agent, baseline FROM warden_baselines ORDER BY agent');
      return rows.map((r) => parseRow(r.agent, r.baseline));
    },
    async remove(agent) {
      return (await db.run('DELETE FROM warden_baselines WHERE agent = $1', [agent])) > 0;
    },
  };
}
