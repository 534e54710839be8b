/**
 * What reaches an OTLP collector is scrubbed as the custody ledger is (telemetry/scrubbed-span-
 * processor.ts): attributes whose key names a secret (`*.token`, `*.api_key`,
 * `http.request.header.authorization`...) are dropped and listed, and every compact JWS in names,
 * values, status messages and events is hashed. Any span of the process counts (Warden's, a
 * library's, an embedding program's instrumentation), since the provider may be the global one.
 * (Found by the issue-16 attack: the OTLP processor exported spans raw.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerReader } from '../../custody/ledger-reader';
import { setupTelemetry, type Telemetry } from '../../telemetry/setup-telemetry';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver';

// A compact JWS as the credential authority issues them (header {"alg":"EdDSA","typ":"JWT"}).
const JWS = `${Buffer.from('{"alg":"EdDSA","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"agent:x","jti":"j1"}').toString('base64url')}.c2lnbmF0dXJlLWJ5dGVz`;
const API_KEY = 'sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0';

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let stateDir: string;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stateDir = mkdtempSync(join(tmpdir(), 'warden-attack-otlp-'));
  telemetry = setupTelemetry({ stateDir, serviceName: 'warden-worker', env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, register: false, commit: 'sync' });
});

afterAll(async () => {
  await telemetry?.shutdown();
  await receiver?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('what reaches the OTLP collector', () => {
  it('is scrubbed as the ledger is: no secret-named attribute, no JWS', async () => {
    const span = telemetry.tracer.startSpan(`GET /v1/items?access_token=${JWS}`, {
      attributes: { 'http.request.header.authorization': `Bearer ${JWS}`, 'llm.api_key': API_KEY, 'warden.tool.note': `called with ${JWS}` },
    });
    span.addEvent('retry', { 'error.message': `401 for token ${JWS}` });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `rejected ${JWS}` });
    span.end();
    await telemetry.forceFlush();

    // The ledger holds the scrubbed span (the precondition: this is what Warden means to keep).
    const reader = LedgerReader.open({ stateDir });
    const records = reader.records();
    reader.close();
    expect(records.length).toBeGreaterThan(0);
    const ledgerText = JSON.stringify(records);
    expect(ledgerText).not.toContain(JWS);

    const exported = receiver.spans.find((s) => s.name.startsWith('GET /v1/items'));
    expect(exported).toBeDefined();
    const text = JSON.stringify(exported);
    expect(text).not.toContain(JWS);
    expect(text).not.toContain(API_KEY);
    expect(text).toContain('jws-sha256:');
    expect(text).toContain('warden.redacted_attributes');
    expect(text).toContain('llm.api_key');
  });
});
