/**
 * The monitor's metrics from real OpenTelemetry SDK spans and a real meter provider: every tool
 * call's score goes into the score histogram, every response counts once by response, blocks add
 * their detection-to-block time; spans without monitor figures count for nothing.
 */
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData, type ResourceMetrics, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { GEN_AI_ATTR, WARDEN_ATTR } from '../../custody/attributes';
import { MONITOR_METRIC, MonitorMetricsSpanProcessor } from '../../telemetry/monitor-metrics';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
  async read(): Promise<ResourceMetrics> {
    return (await this.collect()).resourceMetrics;
  }
}

describe('monitor metrics', () => {
  it('score histogram per tool, alerts by response, detection-to-block in seconds', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const tracer = new BasicTracerProvider({ spanProcessors: [new MonitorMetricsSpanProcessor(meterProvider.getMeter('warden'))] }).getTracer('test');
    for (const score of [0, 0, 35, 90]) tracer.startSpan('RunActivity:runTool', { attributes: { [GEN_AI_ATTR.toolName]: 'sql.exec', [WARDEN_ATTR.monitorScore]: score } }).end();
    tracer.startSpan('RunActivity:runTool', { attributes: { [GEN_AI_ATTR.toolName]: 'fs.read' } }).end();
    tracer.startSpan('RunActivity:respondToAnomaly', { attributes: { [WARDEN_ATTR.monitorScore]: 45, [WARDEN_ATTR.monitorResponse]: 'alert' } }).end();
    tracer.startSpan('RunActivity:respondToAnomaly', { attributes: { [WARDEN_ATTR.monitorScore]: 90, [WARDEN_ATTR.monitorResponse]: 'remediate', [WARDEN_ATTR.monitorDetectionToBlockMs]: 42 } }).end();
    tracer.startSpan('RunActivity:respondToAnomaly', { attributes: { [WARDEN_ATTR.monitorScore]: 100, [WARDEN_ATTR.monitorResponse]: 'remediate', [WARDEN_ATTR.monitorDetectionToBlockMs]: 18 } }).end();
    const metrics = (await reader.read()).scopeMetrics.flatMap((s) => s.metrics);
    const byName = (name: string) => metrics.find((m) => m.descriptor.name === name);

    const score = byName(MONITOR_METRIC.score) as HistogramMetricData;
    expect(score.dataPoints).toHaveLength(1);
    expect(score.dataPoints[0]).toMatchObject({ attributes: { [GEN_AI_ATTR.toolName]: 'sql.exec' }, value: { count: 4, sum: 125, max: 90 } });

    const alerts = byName(MONITOR_METRIC.alerts) as SumMetricData;
    expect(Object.fromEntries(alerts.dataPoints.map((p) => [p.attributes[WARDEN_ATTR.monitorResponse], p.value]))).toEqual({ alert: 1, remediate: 2 });

    const toBlock = byName(MONITOR_METRIC.detectionToBlock) as HistogramMetricData;
    expect(toBlock.descriptor.unit).toBe('s');
    expect(toBlock.dataPoints[0]?.value).toMatchObject({ count: 2, sum: 0.06 });
    await meterProvider.shutdown();
  });
});
