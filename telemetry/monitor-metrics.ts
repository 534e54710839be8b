/**
 * The monitor's OpenTelemetry metrics, derived from the spans that carry its figures (so each is
 * counted once, wherever the span was made, and never again on replay):
 *
 * | metric                               | unit       | from                                             |
 * |--------------------------------------|------------|--------------------------------------------------|
 * | `warden.monitor.score`               | `1`        | each tool call's span (`warden.monitor.score`), by `gen_ai.tool.name` |
 * | `warden.monitor.alerts`              | `{alert}`  | each response's span (`respondToAnomaly`), by `warden.monitor.response` |
 * | `warden.monitor.detection_to_block`  | `s`        | each block's span: detection (or kill) to revoked credentials |
 *
 * Task, workflow and alert ids never become metric attributes (cardinality); they are on the spans.
 */
import type { Context, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, WARDEN_ATTR } from '../custody/attributes';

export const MONITOR_METRIC = {
  score: 'warden.monitor.score',
  alerts: 'warden.monitor.alerts',
  detectionToBlock: 'warden.monitor.detection_to_block',
} as const;

const SCORE_BUCKETS = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class MonitorMetricsSpanProcessor implements SpanProcessor {
  private readonly score: Histogram;
  private readonly alerts: Counter;
  private readonly detectionToBlock: Histogram;

  constructor(meter: Meter) {
    this.score = meter.createHistogram(MONITOR_METRIC.score, { unit: '1', description: "The monitor's anomaly score of each tool call (0-100).", advice: { explicitBucketBoundaries: SCORE_BUCKETS } });
    this.alerts = meter.createCounter(MONITOR_METRIC.alerts, { unit: '{alert}', description: 'Alerts the monitor raised, by response (alert, step-up, block, remediate).' });
    this.detectionToBlock = meter.createHistogram(MONITOR_METRIC.detectionToBlock, {
      unit: 's',
      description: "Time from the monitor's detection (or a kill) to the task's credentials no longer verifying.",
      advice: { explicitBucketBoundaries: SECONDS },
    });
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    const a = span.attributes;
    const score = a[WARDEN_ATTR.monitorScore];
    if (typeof score !== 'number') return;
    const response = a[WARDEN_ATTR.monitorResponse];
    if (typeof response === 'string') {
      this.alerts.add(1, { [WARDEN_ATTR.monitorResponse]: response });
      const ms = a[WARDEN_ATTR.monitorDetectionToBlockMs];
      if (typeof ms === 'number' && Number.isFinite(ms)) this.detectionToBlock.record(ms / 1000, { [WARDEN_ATTR.monitorResponse]: response });
      return;
    }
    const tool = a[GEN_AI_ATTR.toolName];
    this.score.record(score, typeof tool === 'string' ? { [GEN_AI_ATTR.toolName]: tool } : {});
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
