/**
 * An alert: what the monitor saw (the action, its score and the reasons), which response rules
 * fired, what Warden did (alert, step-up, block, remediate) and when, down to the milliseconds from
 * the anomalous action to the block. The same record is in the task's result (`--json`), in the
 * state store (`warden alerts`), on stdout, in the custody ledger and on the alert webhook.
 *
 * Deterministic and free of Node imports: the workflow builds alerts.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { ResponseSchema } from './response-rule';
import { SIGNALS } from './score-action';

export const ALERT_SOURCES = ['monitor', 'kill', 'subagent', 'parent'] as const;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('monitoring/alert', () => {
  const ScoreReasonSchema = z.strictObject({ signal: z.enum(SIGNALS), points: z.number().int().min(0), detail: z.string() });
  const FiredRuleSchema = z.strictObject({ id: z.string(), sentence: z.string(), response: ResponseSchema, detail: z.string() });
  const AlertSchema = z.strictObject({
    /** `a-<digest>`: unique per workflow run and alert. */
    id: z.string().min(1),
    rootWorkflowId: z.string(),
    workflowId: z.string(),
    runId: z.string(),
    agent: z.string(),
    user: z.string(),
    /** `monitor`: raised by the rules; `kill`: `warden kill` by a person; `subagent`: a sub-agent was blocked; `parent`: the parent task was. */
    source: z.enum(ALERT_SOURCES),
    /** The step of the anomalous action, when there is one. */
    stepIndex: z.number().int().min(0).optional(),
    tool: z.string().optional(),
    score: z.number().int().min(0).max(100),
    reasons: z.array(ScoreReasonSchema),
    rules: z.array(FiredRuleSchema),
    response: ResponseSchema,
    /** Who killed the task (`warden kill`), and with which key when authenticated. */
    operator: z.string().optional(),
    operatorKey: z.string().optional(),
    reason: z.string().optional(),
    /** When the anomalous action was proposed (workflow time, ISO 8601). */
    actionAt: z.string().optional(),
    /** When the monitor decided (workflow time), or the kill was received. */
    detectedAt: z.string(),
    /** When the task's credentials stopped verifying (the revocation committed; worker clock). */
    blockedAt: z.string().optional(),
    /** blockedAt - detectedAt, and blockedAt - actionAt (ms). */
    detectionToBlockMs: z.number().optional(),
    actionToBlockMs: z.number().optional(),
    /** Webhook delivery: `delivered`, `failed: <why>`, `not configured`; absent until tried. */
    delivery: z.string().optional(),
  });
  return { ScoreReasonSchema, FiredRuleSchema, AlertSchema };
});

export const { ScoreReasonSchema, FiredRuleSchema, AlertSchema } = schemas;
export type Alert = z.infer<typeof AlertSchema>;

/** One line for people: `BLOCK scribe #4 http.fetch score 90: contacts evil.example, ...`. */
export function formatAlert(alert: Alert): string {
  const what = alert.stepIndex === undefined ? '' : ` #${alert.stepIndex} ${alert.tool ?? ''}`;
  const why = alert.reasons.length > 0 ? alert.reasons.map((r) => r.detail).join('; ') : (alert.reason ?? alert.rules.map((r) => r.detail).join('; '));
  const timing = alert.detectionToBlockMs === undefined ? '' : ` (blocked ${Math.round(alert.detectionToBlockMs)} ms after detection)`;
  const by = alert.operator === undefined ? '' : ` by ${alert.operator}`;
  return `${alert.response.toUpperCase()} ${alert.agent}${what} score ${alert.score}${by}: ${why}${timing}`;
}
