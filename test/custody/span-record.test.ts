import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as semconv from '@opentelemetry/semantic-conventions/incubating';
import { ATTR_ERROR_TYPE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { describe, expect, it } from 'vitest';
import { DENIED_ATTRIBUTE_KEYS, GEN_AI_ATTR, GEN_AI_OPERATION, OTEL_ATTR, WARDEN_ATTR, genAiSpanName, isDeniedAttributeKey } from '../../custody/attributes';
import { hrTimeToIso, looksLikeCompactJws, scrubTokens, SpanRecordBodySchema, spanToRecordBody } from '../../custody/span-record';
import { compactJws, sha256Hex } from './fixtures/tokens';

function recordOne(build: (tracer: ReturnType<BasicTracerProvider['getTracer']>) => void): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'warden-test' }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  build(provider.getTracer('warden-test', '1.2.3'));
  return exporter.getFinishedSpans();
}

describe('span attributes', () => {
  it('use the OpenTelemetry GenAI semantic-convention names where they exist', () => {
    expect(GEN_AI_ATTR.operationName).toBe(semconv.ATTR_GEN_AI_OPERATION_NAME);
    expect(GEN_AI_ATTR.requestModel).toBe(semconv.ATTR_GEN_AI_REQUEST_MODEL);
    expect(GEN_AI_ATTR.responseModel).toBe(semconv.ATTR_GEN_AI_RESPONSE_MODEL);
    expect(GEN_AI_ATTR.toolName).toBe(semconv.ATTR_GEN_AI_TOOL_NAME);
    expect(GEN_AI_ATTR.toolCallId).toBe(semconv.ATTR_GEN_AI_TOOL_CALL_ID);
    expect(GEN_AI_ATTR.agentName).toBe(semconv.ATTR_GEN_AI_AGENT_NAME);
    expect(GEN_AI_ATTR.agentId).toBe(semconv.ATTR_GEN_AI_AGENT_ID);
    expect(GEN_AI_OPERATION.chat).toBe(semconv.GEN_AI_OPERATION_NAME_VALUE_CHAT);
    expect(GEN_AI_OPERATION.executeTool).toBe(semconv.GEN_AI_OPERATION_NAME_VALUE_EXECUTE_TOOL);
    expect(GEN_AI_OPERATION.invokeAgent).toBe(semconv.GEN_AI_OPERATION_NAME_VALUE_INVOKE_AGENT);
    expect(genAiSpanName.executeTool('fs.read')).toBe('execute_tool fs.read');
  });

  it('use the stable semantic-convention names for the general attributes (kept as constants, not loaded from the package at run time)', () => {
    expect(OTEL_ATTR).toEqual({ errorType: ATTR_ERROR_TYPE, serverAddress: ATTR_SERVER_ADDRESS, serverPort: ATTR_SERVER_PORT, serviceName: ATTR_SERVICE_NAME });
  });

  it('name Warden attributes under warden.*', () => {
    expect(Object.values(WARDEN_ATTR).every((name) => name.startsWith('warden.'))).toBe(true);
    expect(WARDEN_ATTR).toMatchObject({
      user: 'warden.user',
      intentSha256: 'warden.intent.sha256',
      agentId: 'warden.agent.id',
      agentChain: 'warden.agent.chain',
      modelVersion: 'warden.model.version',
      promptSha256: 'warden.prompt.sha256',
      toolArgsSha256: 'warden.tool.args.sha256',
      credentialJti: 'warden.credential.jti',
      policyDecision: 'warden.policy.decision',
      policyRules: 'warden.policy.rules',
      resourcesFiles: 'warden.resources.files',
      resourcesHosts: 'warden.resources.hosts',
      resourcesTables: 'warden.resources.tables',
      outcome: 'warden.outcome',
      taskId: 'warden.task.id',
    });
  });

  it.each([
    ['warden.credential.token', true],
    ['http.request.header.authorization', true],
    ['openai.api_key', true],
    ['db.password', true],
    ['warden.credential.jti', false],
    ['gen_ai.usage.input_tokens', false],
    ['gen_ai.tool.name', false],
  ])('deny-list: %s dropped = %s', (key, denied) => {
    expect(isDeniedAttributeKey(key)).toBe(denied);
    if (key === 'warden.credential.token') expect(DENIED_ATTRIBUTE_KEYS).toContain(key);
  });
});

describe('compact JWS detection', () => {
  const token = compactJws();

  it('recognises a JWS and nothing that merely has dots', () => {
    expect(looksLikeCompactJws(token)).toBe(true);
    for (const notToken of ['api.example.com', 'workspace/notes.txt', 'a.b.c', 'v1.24.0', 'abcdefghijkl.mnop.qrst']) {
      expect(looksLikeCompactJws(notToken)).toBe(false);
      expect(scrubTokens(notToken)).toBe(notToken);
    }
  });

  it('replaces a token, alone or inside text, by its SHA-256', () => {
    const hashed = `jws-sha256:${sha256Hex(token)}`;
    expect(scrubTokens(token)).toBe(hashed);
    expect(scrubTokens(`Authorization: Bearer ${token}; next`)).toBe(`Authorization: Bearer ${hashed}; next`);
    expect(scrubTokens(`header=Bearer%20${token}`)).toBe(`header=Bearer%20${hashed}`);
    expect(scrubTokens(`${token} and ${token}`)).toBe(`${hashed} and ${hashed}`);
  });
});

describe('span to ledger record', () => {
  it('records name, ids, kind, times with nanoseconds, status, JSON-able attributes, events, links, service', () => {
    const token = compactJws();
    const spans = recordOne((tracer) => {
      const root = tracer.startSpan('invoke_agent scribe', { startTime: [1767225600, 123456789] });
      const parentContext = trace.setSpan(context.active(), root);
      const tool = tracer.startSpan(
        genAiSpanName.executeTool('fs.read'),
        {
          kind: SpanKind.CLIENT,
          startTime: [1767225601, 5],
          links: [{ context: root.spanContext() }],
          attributes: {
            [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.executeTool,
            [GEN_AI_ATTR.toolName]: 'fs.read',
            [WARDEN_ATTR.credentialJti]: 'cred-1',
            'warden.credential.token': token,
            [WARDEN_ATTR.resourcesFiles]: ['notes.txt', `leak-${token}`],
            'warden.attempt': 2,
            'warden.cached': false,
            'warden.bad.number': Number.NaN,
          },
        },
        parentContext,
      );
      tool.addEvent('warden.policy.evaluated', { [WARDEN_ATTR.policyDecision]: 'allow', note: `token ${token}`, 'x.authorization': 'secret' }, [1767225601, 500]);
      tool.setStatus({ code: SpanStatusCode.ERROR, message: `rejected ${token}` });
      tool.end([1767225602, 0]);
      root.end([1767225603, 0]);
    });
    const tool = spans[0] as ReadableSpan;
    const body = spanToRecordBody(tool);
    expect(SpanRecordBodySchema.parse(body)).toEqual(body);
    const hashed = `jws-sha256:${sha256Hex(token)}`;
    expect(body).toEqual({
      name: 'execute_tool fs.read',
      traceId: tool.spanContext().traceId,
      spanId: tool.spanContext().spanId,
      parentSpanId: (spans[1] as ReadableSpan).spanContext().spanId,
      kind: 'CLIENT',
      start: '2026-01-01T00:00:01.000000005Z',
      end: '2026-01-01T00:00:02.000000000Z',
      status: { code: 'ERROR', message: `rejected ${hashed}` },
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'fs.read',
        'warden.credential.jti': 'cred-1',
        'warden.resources.files': ['notes.txt', `leak-${hashed}`],
        'warden.attempt': 2,
        'warden.cached': false,
      },
      events: [{ name: 'warden.policy.evaluated', time: '2026-01-01T00:00:01.000000500Z', attributes: { 'warden.policy.decision': 'allow', note: `token ${hashed}` } }],
      links: [{ traceId: tool.spanContext().traceId, spanId: (spans[1] as ReadableSpan).spanContext().spanId }],
      service: 'warden-test',
      scope: { name: 'warden-test', version: '1.2.3' },
      redactedAttributes: ['warden.credential.token', 'x.authorization'],
    });
    expect(JSON.stringify(body)).not.toContain(token);
    expect(spanToRecordBody(spans[1] as ReadableSpan)).toMatchObject({ parentSpanId: null, kind: 'INTERNAL', status: { code: 'UNSET' }, start: '2026-01-01T00:00:00.123456789Z' });
  });

  it('formats high-resolution times losslessly', () => {
    expect(hrTimeToIso([0, 0])).toBe('1970-01-01T00:00:00.000000000Z');
    expect(hrTimeToIso([1767225600, 999999999])).toBe('2026-01-01T00:00:00.999999999Z');
  });
});
