/**
 * GenAI metrics derived from spans: which span makes which metric with which attributes, token
 * usage only when reported, `error.type` on failures, and nothing for spans that are no GenAI
 * operation. Read through a real SDK metric reader.
 */
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { GenAiMetricsSpanProcessor } from '../../telemetry/gen-ai-metrics';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function metricsOf(spans: { name: string; kind?: SpanKind; attributes: Attributes; error?: boolean }[]) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meters = new MeterProvider({ readers: [reader] });
  const tracers = new BasicTracerProvider({ spanProcessors: [new GenAiMetricsSpanProcessor(meters.getMeter('test'))] });
  cleanup = async () => {
    await tracers.shutdown();
    await meters.shutdown();
  };
  const tracer = tracers.getTracer('test');
  for (const s of spans) {
    const span = tracer.startSpan(s.name, { kind: s.kind ?? SpanKind.INTERNAL, attributes: s.attributes });
    if (s.error) span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    span.end();
  }
  await meters.forceFlush();
  const metrics = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((m) => m.metrics));
  return new Map(metrics.map((m) => [m.descriptor.name, m]));
}

const chat = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024', 'warden.task.id': 'wf-1' };

describe('GenAI metrics from spans', () => {
  it('a chat span: operation duration, and token usage by token type when reported', async () => {
    const metrics = await metricsOf([
      { name: 'chat gpt-4o', kind: SpanKind.CLIENT, attributes: { ...chat, 'gen_ai.usage.input_tokens': 120, 'gen_ai.usage.output_tokens': 30 } },
      { name: 'chat gpt-4o', kind: SpanKind.CLIENT, attributes: chat },
    ]);
    const duration = metrics.get('gen_ai.client.operation.duration') as HistogramMetricData;
    expect(duration.descriptor.unit).toBe('s');
    expect(duration.dataPoints).toHaveLength(1);
    expect(duration.dataPoints[0]?.value.count).toBe(2);
    expect(duration.dataPoints[0]?.attributes).toEqual({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024' });
    // The conventions' bucket boundaries.
    expect(duration.dataPoints[0]?.value.buckets.boundaries.slice(0, 3)).toEqual([0.01, 0.02, 0.04]);
    const tokens = metrics.get('gen_ai.client.token.usage') as HistogramMetricData;
    expect(tokens.descriptor.unit).toBe('{token}');
    // Only the span that reported usage counts: one input and one output point, no zeros.
    expect(tokens.dataPoints.map((p) => [p.attributes['gen_ai.token.type'], p.value.count, p.value.sum]).sort()).toEqual([
      ['input', 1, 120],
      ['output', 1, 30],
    ]);
  });

  it.each([
    ['invoke_agent planner', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner', 'gen_ai.agent.id': 'wf-1' }, 'gen_ai.invoke_agent.duration', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner' }],
    ['execute_tool fs.read', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'fs.read', 'gen_ai.tool.type': 'function', 'gen_ai.tool.call.id': 'c1' }, 'gen_ai.execute_tool.duration', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'fs.read', 'gen_ai.tool.type': 'function' }],
  ])('%s: its duration metric, without per-call ids', async (name, attributes, metric, expected) => {
    const metrics = await metricsOf([{ name, attributes }]);
    expect((metrics.get(metric) as HistogramMetricData).dataPoints[0]?.attributes).toEqual(expected);
    expect(metrics.has('gen_ai.client.operation.duration')).toBe(false);
  });

  it('a failed operation carries error.type: its own, else _OTHER', async () => {
    const metrics = await metricsOf([
      { name: 'execute_tool a', attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'a', 'error.type': 'ERR_SANDBOX_TIMEOUT' }, error: true },
      { name: 'execute_tool b', attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'b' }, error: true },
      { name: 'invoke_agent c', attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'c', 'error.type': 'denied' } },
    ]);
    const tools = (metrics.get('gen_ai.execute_tool.duration') as HistogramMetricData).dataPoints.map((p) => [p.attributes['gen_ai.tool.name'], p.attributes['error.type']]);
    expect(tools.sort()).toEqual([
      ['a', 'ERR_SANDBOX_TIMEOUT'],
      ['b', '_OTHER'],
    ]);
    expect((metrics.get('gen_ai.invoke_agent.duration') as HistogramMetricData).dataPoints[0]?.attributes['error.type']).toBe('denied');
  });

  it('counts policy decisions by decision, and nothing for other spans', async () => {
    const check = (decision: string) => ({ name: 'check_policy fs.write', attributes: { 'warden.operation.name': 'check_policy', 'warden.policy.decision': decision } });
    const metrics = await metricsOf([check('allow'), check('allow'), check('approval'), { name: 'RunActivity:beginTask', attributes: {} }, { name: 'StartWorkflow:agentTask', attributes: {} }]);
    const decisions = (metrics.get('warden.policy.decisions') as SumMetricData).dataPoints.map((p) => [p.attributes['warden.policy.decision'], p.value]);
    expect(decisions.sort()).toEqual([
      ['allow', 2],
      ['approval', 1],
    ]);
    expect([...metrics.keys()]).toEqual(['warden.policy.decisions']);
  });
});
