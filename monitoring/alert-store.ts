/**
 * Alerts in the state database (`warden_alerts`): recorded by the worker that raised them, listed
 * by `warden alerts` (from any machine that reaches the database, with PostgreSQL).
 *
 * Invariants: recording is idempotent per alert id (a retried activity records once); a row is
 * parsed against AlertSchema when read, and one that does not parse is reported, not skipped.
 */
import { MonitorError } from '../errors';
import type { SqlDatabase } from '../state/sql-database';
import { AlertSchema, type Alert } from './alert';

export interface AlertQuery {
  /** Alerts of this task tree (root workflow id; a sub-agent's id is read as its root's). */
  task?: string;
  /** ISO 8601: alerts detected at or after. */
  since?: string;
  /** Newest first, at most this many (default 100). */
  limit?: number;
}

export interface AlertStore {
  record(alert: Alert): Promise<void>;
  /** Records how the webhook delivery went. */
  markDelivery(alertId: string, delivery: string): Promise<void>;
  list(query?: AlertQuery): Promise<Alert[]>;
}

function parseRow(row: { alert_id: string; alert: string; delivery: string | null }): Alert {
  let value: unknown;
  try {
    value = JSON.parse(row.alert);
  } catch {
    value = undefined;
  }
  const parsed = AlertSchema.safeParse(value);
  if (!parsed.success) throw new MonitorError('ERR_MONITOR_RECORD_INVALID', `alert ${row.alert_id} in the state database is not a valid alert`, { details: { alert: row.alert_id } });
  return row.delivery === null ? parsed.data : { ...parsed.data, delivery: row.delivery };
}

export function createAlertStore(db: SqlDatabase): AlertStore {
  return {
    async record(input) {
      const alert = AlertSchema.parse(input);
      await db.run(
        `INSERT INTO warden_alerts (alert_id, root_workflow_id, workflow_id, agent, step_index, score, response, source, alert, detected_at, blocked_at, delivery)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (alert_id) DO NOTHING`,
        [
          alert.id,
          alert.rootWorkflowId,
          alert.workflowId,
          alert.agent,
          alert.stepIndex ?? null,
          alert.score,
          alert.response,
          alert.source,
          JSON.stringify(alert),
          alert.detectedAt,
          alert.blockedAt ?? null,
          alert.delivery ?? null,
        ],
      );
    },
    async markDelivery(alertId, delivery) {
      await db.run('UPDATE warden_alerts SET delivery = $1 WHERE alert_id = $2', [delivery, alertId]);
    },
    async list(query = {}) {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (query.task !== undefined) {
        params.push(query.task.split('/')[0]!);
        where.push(`root_workflow_id = $${params.length}`);
      }
      if (query.since !== undefined) {
        params.push(query.since);
        where.push(`detected_at >= $${params.length}`);
      }
      params.push(Math.max(1, Math.min(query.limit ?? 100, 10_000)));
      const rows = await db.all<{ alert_id: string; alert: string; delivery: string | null }>(
        `SELECT alert_id, alert, delivery FROM warden_alerts ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY detected_at DESC, alert_id LIMIT $${params.length}`,
        params,
      );
      return rows.map(parseRow);
    },
  };
}
