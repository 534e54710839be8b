/**
 * `custody`: the time a tool-call span takes to start and end when the custody ledger records it,
 * through the same telemetry a worker sets up (`setupProcessTelemetry`: the ledger exporter and
 * processor with the worker's settings), next to a plain OpenTelemetry export
 * (SimpleSpanProcessor -> InMemorySpanExporter), interleaved. Whatever the ledger defers is
 * flushed every 10 spans, as a worker does at the end of each activity and workflow task, and
 * counted separately. Target: at most 0.1 ms added per span on the hot path (median).
 */
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from '../../custody/attributes';
import { verifyLedger } from '../../custody/verify-ledger';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { figure, single, type BenchSection } from '../bench-section';
import { summarize } from '../stats';

/** Attributes of a typical tool-call span. */
const ATTRIBUTES = {
  [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.executeTool,
  [GEN_AI_ATTR.toolName]: 'fs.read',
  [WARDEN_ATTR.taskId]: 'warden-scribe-bench',
  [WARDEN_ATTR.agentId]: 'warden-scribe-bench',
  [WARDEN_ATTR.agentChain]: ['warden-scribe-bench'],
  [WARDEN_ATTR.toolArgsSha256]: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  [WARDEN_ATTR.credentialJti]: 'cred-0d9f6c1e',
  [WARDEN_ATTR.policyDecision]: 'allow',
  [WARDEN_ATTR.policyRules]: ['grant:fs.read'],
  [WARDEN_ATTR.resourcesFiles]: ['notes.txt'],
  [WARDEN_ATTR.outcome]: 'ok',
};

export const custodySection: BenchSection = {
  name: 'custody',
  title: 'a span recorded in the custody ledger (worker telemetry) vs a plain in-memory OpenTelemetry export',
  async run({ quick, tmpDir }) {
    const spans = quick ? 1000 : 5000;
    const warmup = quick ? 100 : 300;
    const telemetry = setupProcessTelemetry({ stateDir: join(tmpDir, 'custody'), serviceName: 'warden-worker', env: {} });
    if (telemetry === undefined) throw new Error('telemetry is off');
    const memory = new InMemorySpanExporter();
    const plainProvider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'warden-bench' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
    const plain = plainProvider.getTracer('warden');
    const ledgerMs: number[] = [];
    const plainMs: number[] = [];
    let flushMs = 0;
    try {
      for (let round = 0; round < warmup + spans; round += 1) {
        const order = round % 2 === 0 ? ['ledger', 'plain'] : ['plain', 'ledger'];
        for (const which of order) {
          const tracer = which === 'ledger' ? telemetry.tracer : plain;
          const started = performance.now();
          tracer.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
          const elapsed = performance.now() - started;
          if (round >= warmup) (which === 'ledger' ? ledgerMs : plainMs).push(elapsed);
        }
        if (round % 500 === 0) memory.reset();
        if (round % 10 === 9) {
          const flushStarted = performance.now();
          await telemetry.forceFlush();
          if (round >= warmup) flushMs += performance.now() - flushStarted;
        }
      }
      const flushStarted = performance.now();
      await telemetry.forceFlush();
      flushMs += performance.now() - flushStarted;
      const ledgerSummary = summarize(ledgerMs);
      const plainSummary = summarize(plainMs);
      const report = verifyLedger(telemetry.ledger);
      if (!report.ok) throw new Error('the benchmark ledger does not verify');
      const hotTotal = ledgerMs.reduce((a, b) => a + b, 0);
      return {
        figures: [
          figure('custody.span', 'span start+end, recorded in the custody ledger', ledgerSummary, {
            baseline: { label: 'SimpleSpanProcessor -> InMemorySpanExporter', summary: plainSummary },
          }),
          figure('custody.added', 'added per span on the hot path (median - median)', single(ledgerSummary.median - plainSummary.median)),
          figure('custody.written', 'per span incl. deferred writes (hot path + flushes, mean)', single((hotTotal + flushMs) / spans)),
        ],
        notes: [
          `${spans} spans each, interleaved, flushed every 10 (flushes took ${flushMs.toFixed(0)} ms in all); the ledger verifies (${report.totalRecords} records, ${report.checkpoints} checkpoints).`,
        ],
      };
    } finally {
      await telemetry.shutdown();
      await plainProvider.shutdown();
    }
  },
};
