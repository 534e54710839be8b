/**
 * The standard OpenTelemetry environment variables Warden honours: service name and resource
 * attributes, per-signal OTLP endpoints, and exporters turned off; the custody ledger records
 * regardless.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { otlpSignalUrl, parseResourceAttributes, serviceNameOf, setupTelemetry } from '../../telemetry/setup-telemetry';
import { tempStateDir } from '../custody/fixtures/ledger-fixture';

describe('OpenTelemetry environment', () => {
  it.each([
    [{}, 'warden-worker'],
    [{ OTEL_SERVICE_NAME: 'agents-prod' }, 'agents-prod'],
    [{ OTEL_SERVICE_NAME: '  ' }, 'warden-worker'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,team=ai' }, 'from-resource'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource', OTEL_SERVICE_NAME: 'wins' }, 'wins'],
  ])('service name with %j is %s', (env, name) => {
    expect(serviceNameOf('warden-worker', env)).toBe(name);
  });

  it.each([
    ['a=1,b=two', { a: '1', b: 'two' }],
    [' a = 1 , b=%20x%2Cy ', { a: '1', b: ' x,y' }],
    ['novalue,=nokey,c=3', { c: '3' }],
    ['bad=%E0%A4%A', {}],
    ['', {}],
  ])('OTEL_RESOURCE_ATTRIBUTES=%j parses to %j', (value, expected) => {
    expect(parseResourceAttributes(value)).toEqual(expected);
  });

  it.each([
    ['metrics', undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/' }, 'http://otel:4318/v1/metrics'],
    ['metrics', undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:9/custom' }, 'http://m:9/custom'],
    ['metrics', 'http://explicit:4318', { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:9/custom' }, 'http://explicit:4318/v1/metrics'],
    ['traces', undefined, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:9/custom' }, undefined],
    ['metrics', undefined, {}, undefined],
  ] as const)('%s endpoint from %s and %j is %s', (signal, endpoint, env, url) => {
    expect(otlpSignalUrl(signal, endpoint, env)).toBe(url);
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }, 'http://127.0.0.1:1/v1/traces', 'http://127.0.0.1:1/v1/metrics'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_TRACES_EXPORTER: 'none' }, undefined, 'http://127.0.0.1:1/v1/metrics'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_METRICS_EXPORTER: 'NONE' }, 'http://127.0.0.1:1/v1/traces', undefined],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' }, undefined, undefined],
  ])('exporters with %j: traces %s, metrics %s; the ledger records anyway', async (env, traces, metrics) => {
    const stateDir = tempStateDir();
    const failures: unknown[] = [];
    const telemetry = setupTelemetry({ stateDir, serviceName: 'warden-test', env, register: false, commit: 'sync', onOtlpError: (error) => failures.push(error) });
    try {
      expect(telemetry.otlpUrl).toBe(traces);
      expect(telemetry.otlpMetricsUrl).toBe(metrics);
      expect(telemetry.meterProvider === undefined).toBe(metrics === undefined);
      telemetry.tracer.startSpan('s').end();
      expect(telemetry.ledger.size()).toBe(1);
      expect(telemetry.resource.attributes['service.name']).toBe('warden-test');
    } finally {
      // Nothing listens on port 1: the final OTLP export fails, is reported, and shutdown still completes.
      await telemetry.shutdown();
      rmSync(stateDir, { recursive: true, force: true });
    }
    if (traces !== undefined) expect(failures.length).toBeGreaterThan(0);
    if (traces === undefined && metrics === undefined) expect(failures).toEqual([]);
  });
});
