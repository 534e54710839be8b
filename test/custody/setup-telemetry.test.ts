import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { WARDEN_ATTR } from '../../custody/attributes';
import { verifyLedger } from '../../custody/verify-ledger';
import { otlpTracesUrl, setupTelemetry, type Telemetry } from '../../telemetry/setup-telemetry';
import { tempStateDir } from './fixtures/ledger-fixture';

/** A stand-in OTLP/HTTP collector: remembers what was posted where. */
async function fakeCollector(): Promise<{ url: string; requests: { path: string; body: string }[]; close(): Promise<void> }> {
  const requests: { path: string; body: string }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track(telemetry: Telemetry, stateDir: string): Telemetry {
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  cleanups.push(() => telemetry.shutdown());
  return telemetry;
}

describe('setupTelemetry', () => {
  it.each([
    [undefined, {}, undefined],
    ['http://jaeger:4318', {}, 'http://jaeger:4318/v1/traces'],
    ['http://jaeger:4318/', {}, 'http://jaeger:4318/v1/traces'],
    ['http://jaeger:4318/v1/traces', {}, 'http://jaeger:4318/v1/traces'],
    [undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }, 'http://otel:4318/v1/traces'],
    [undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' }, 'http://t:1/x'],
    ['http://explicit:4318', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' }, 'http://explicit:4318/v1/traces'],
  ])('OTLP endpoint %s with env %j -> %s', (endpoint, env, url) => {
    expect(otlpTracesUrl(endpoint, env)).toBe(url);
  });

  it('records every span in the ledger as it ends, sends them to OTLP too, and shuts down cleanly', async () => {
    const collector = await fakeCollector();
    cleanups.push(() => collector.close());
    const stateDir = tempStateDir();
    const telemetry = track(setupTelemetry({ stateDir, serviceName: 'warden-test', otlpEndpoint: collector.url, env: {}, commit: 'sync' }), stateDir);
    expect(telemetry.registered).toBe(true);
    expect(telemetry.otlpUrl).toBe(`${collector.url}/v1/traces`);

    // The global API is wired: context flows through async code to child spans.
    const tracer = trace.getTracer('warden');
    await tracer.startActiveSpan('invoke_agent scribe', { attributes: { [WARDEN_ATTR.taskId]: 'wf-otlp' } }, async (root) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const child = tracer.startSpan('execute_tool fs.read');
      expect(await telemetry.ledger.size()).toBe(0);
      child.end();
      // Synchronous: on disk as soon as end() returns.
      expect(await telemetry.ledger.size()).toBe(1);
      root.end();
    });
    const [child, root] = await telemetry.ledger.records();
    expect((child?.body as { parentSpanId: string }).parentSpanId).toBe((root?.body as { spanId: string }).spanId);
    expect(child?.taskId).toBe('wf-otlp');
    expect((root?.body as { service: string }).service).toBe('warden-test');

    const ledgerPath = telemetry.ledger.path;
    await telemetry.shutdown();
    await telemetry.shutdown();
    expect(verifyLedger(ledgerPath)).toMatchObject({ ok: true, totalRecords: 2 });
    const posted = collector.requests.filter((r) => r.path === '/v1/traces');
    expect(posted.length).toBeGreaterThan(0);
    expect(posted.map((r) => r.body).join('')).toContain('execute_tool fs.read');
    // The global registration was undone: a new setup can take it.
    const stateDir2 = tempStateDir();
    const again = track(setupTelemetry({ stateDir: stateDir2, serviceName: 'warden-test', env: {} }), stateDir2);
    expect(again.registered).toBe(true);
    expect(again.otlpUrl).toBeUndefined();
  });

  it('records into a ledger it was given and leaves it open', async () => {
    const stateDir = tempStateDir();
    const first = setupTelemetry({ stateDir, serviceName: 'a', env: {}, register: false });
    const second = track(setupTelemetry({ stateDir, serviceName: 'b', env: {}, ledger: first.ledger, register: false }), stateDir);
    expect(second.registered).toBe(false);
    second.tracer.startSpan('s').end();
    await second.shutdown();
    expect(first.ledger.size()).toBe(1);
    await first.shutdown();
  });

  it('publishes every signed tree head to OTLP as a warden.custody.checkpoint span, and never into the ledger itself', async () => {
    const collector = await fakeCollector();
    cleanups.push(() => collector.close());
    const stateDir = tempStateDir();
    const telemetry = track(
      setupTelemetry({ stateDir, serviceName: 'warden-test', otlpEndpoint: collector.url, env: {}, register: false, checkpointEvery: 3, exporter: { isTaskEnd: (s) => s.name === 'end' } }),
      stateDir,
    );
    for (const name of ['a', 'b', 'c', 'd', 'end']) telemetry.tracer.startSpan(name, { attributes: { [WARDEN_ATTR.taskId]: 'wf-heads' } }).end();
    await telemetry.forceFlush();
    const checkpoints = await telemetry.ledger.checkpoints();
    expect(checkpoints.map((c) => c.treeSize)).toEqual([3, 5]);
    const records = await telemetry.ledger.records();
    expect(records.map((r) => (r.body as { name: string }).name)).toEqual(['a', 'b', 'c', 'd', 'end']);
    await telemetry.shutdown();
    const posted = collector.requests.filter((r) => r.path === '/v1/traces').map((r) => r.body).join('');
    expect(posted.split('warden.custody.checkpoint"').length - 1).toBeGreaterThanOrEqual(2);
    for (const checkpoint of checkpoints) {
      expect(posted).toContain(checkpoint.rootHash);
      expect(posted).toContain(checkpoint.signature);
    }
  });
});
