/**
 * GenAI metrics from GenAI spans (OpenTelemetry GenAI semantic conventions, metrics):
 *
 * | metric                             | unit      | from                                           |
 * |------------------------------------|-----------|------------------------------------------------|
 * | `gen_ai.client.operation.duration` | `s`       | each `chat <model>` span                       |
 * | `gen_ai.client.token.usage`        | `{token}` | its `gen_ai.usage.input_tokens`/`output_tokens` (`gen_ai.token.type` `input`/`output`), only when the driver reported usage |
 * | `gen_ai.invoke_agent.duration`     | `s`       | each `invoke_agent <agent>` span (a whole agent run) |
 * | `gen_ai.execute_tool.duration`     | `s`       | each `execute_tool <tool>` span                 |
 * | `warden.policy.decisions`          | `{decision}` | each `check_policy <tool>` span, by decision  |
 *
 * A span processor, so every GenAI span counts once wherever it was made: in the worker
 * (activities) or in the workflow sandbox (agent runs arrive through the span sink, which is not
 * called on replay, so a replayed workflow counts nothing twice). Attributes are the conventions'
 * low-cardinality ones (operation, provider, models, agent or tool name, `error.type`); task and
 * workflow ids never become metric attributes.
 */
import type { Attributes, Context, Histogram, Meter, Counter } from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, GEN_AI_OPERATION, OTEL_ATTR, WARDEN_ATTR, WARDEN_OPERATION } from '../custody/attributes';

export const GEN_AI_METRIC = {
  operationDuration: 'gen_ai.client.operation.duration',
  tokenUsage: 'gen_ai.client.token.usage',
  invokeAgentDuration: 'gen_ai.invoke_agent.duration',
  executeToolDuration: 'gen_ai.execute_tool.duration',
  policyDecisions: 'warden.policy.decisions',
} as const;

/** Bucket boundaries the conventions prescribe for durations (seconds) and token counts. */
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

/** Attributes copied from a span to its metrics, when present. */
const CHAT_KEYS = [GEN_AI_ATTR.operationName, GEN_AI_ATTR.providerName, GEN_AI_ATTR.requestModel, GEN_AI_ATTR.responseModel, OTEL_ATTR.serverAddress, OTEL_ATTR.serverPort];
const AGENT_KEYS = [GEN_AI_ATTR.operationName, GEN_AI_ATTR.agentName, GEN_AI_ATTR.requestModel];
const TOOL_KEYS = [GEN_AI_ATTR.operationName, GEN_AI_ATTR.toolName, GEN_AI_ATTR.toolType];

function pick(span: ReadableSpan, keys: readonly string[]): Attributes {
  const out: Attributes = {};
  for (const key of keys) {
    const value = span.attributes[key];
    if (value !== undefined) out[key] = value;
  }
  // `error.type` is required when the operation failed; `_OTHER` when nothing names the class.
  const errorType = span.attributes[OTEL_ATTR.errorType];
  if (typeof errorType === 'string' && errorType !== '') out[OTEL_ATTR.errorType] = errorType;
  else if (span.status.code === SpanStatusCode.ERROR) out[OTEL_ATTR.errorType] = '_OTHER';
  return out;
}

export class GenAiMetricsSpanProcessor implements SpanProcessor {
  private readonly operationDuration: Histogram;
  private readonly tokenUsage: Histogram;
  private readonly invokeAgentDuration: Histogram;
  private readonly executeToolDuration: Histogram;
  private readonly policyDecisions: Counter;

  constructor(meter: Meter) {
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } };
    this.operationDuration = meter.createHistogram(GEN_AI_METRIC.operationDuration, { ...seconds, description: 'GenAI operation duration.' });
    this.tokenUsage = meter.createHistogram(GEN_AI_METRIC.tokenUsage, { unit: '{token}', description: 'Number of input and output tokens used.', advice: { explicitBucketBoundaries: TOKEN_BUCKETS } });
    this.invokeAgentDuration = meter.createHistogram(GEN_AI_METRIC.invokeAgentDuration, { ...seconds, description: 'Duration of GenAI agent invocations.' });
    this.executeToolDuration = meter.createHistogram(GEN_AI_METRIC.executeToolDuration, { ...seconds, description: 'Duration of GenAI tool executions.' });
    this.policyDecisions = meter.createCounter(GEN_AI_METRIC.policyDecisions, { unit: '{decision}', description: "Warden's policy decisions on proposed actions." });
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    const seconds = hrTimeToMilliseconds(span.duration) / 1000;
    const operation = span.attributes[GEN_AI_ATTR.operationName];
    if (operation === GEN_AI_OPERATION.chat) {
      const attributes = pick(span, CHAT_KEYS);
      this.operationDuration.record(seconds, attributes);
      for (const [key, tokenType] of [
        [GEN_AI_ATTR.usageInputTokens, 'input'],
        [GEN_AI_ATTR.usageOutputTokens, 'output'],
      ] as const) {
        const tokens = span.attributes[key];
        if (typeof tokens === 'number' && Number.isFinite(tokens) && tokens >= 0) this.tokenUsage.record(tokens, { ...attributes, [GEN_AI_ATTR.tokenType]: tokenType });
      }
    } else if (operation === GEN_AI_OPERATION.invokeAgent) {
      this.invokeAgentDuration.record(seconds, pick(span, AGENT_KEYS));
    } else if (operation === GEN_AI_OPERATION.executeTool) {
      this.executeToolDuration.record(seconds, pick(span, TOOL_KEYS));
    } else if (span.attributes[WARDEN_ATTR.operationName] === WARDEN_OPERATION.checkPolicy) {
      const decision = span.attributes[WARDEN_ATTR.policyDecision];
      if (typeof decision === 'string') this.policyDecisions.add(1, { [WARDEN_ATTR.policyDecision]: decision });
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
