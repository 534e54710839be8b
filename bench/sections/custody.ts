/**
 * `custody`: the time a tool-call span takes to start and end when the custody ledger records
 * it (the processor Warden's telemetry installs: canonical JSON, SHA-256 chain, Ed25519, SQLite,
 * periodic Merkle checkpoints) next to a plain OpenTelemetry export (SimpleSpanProcessor ->
 * InMemorySpanExporter), interleaved. Target: at most 0.1 ms added per span (median).
 */
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from '../../custody/attributes';
import { CustodyLedger } from '../../custody/ledger';
import { LedgerSpanExporter, LedgerSpanProcessor } from '../../custody/ledger-span-exporter';
import { verifyLedger } from '../../custody/verify-ledger';
import { figure, single, type BenchSection } from '../bench-section';
import { interleaveSync, summarize } from '../stats';

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
  title: 'a span recorded in the custody ledger vs a plain in-memory OpenTelemetry export',
  async run({ quick, tmpDir }) {
    const spans = quick ? 1000 : 5000;
    const ledger = CustodyLedger.open({ stateDir: join(tmpDir, 'custody') });
    const resource = new Resource({ 'service.name': 'warden-bench' });
    const ledgerProvider = new BasicTracerProvider({ resource, spanProcessors: [new LedgerSpanProcessor(new LedgerSpanExporter({ ledger }))] });
    const memory = new InMemorySpanExporter();
    const plainProvider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(memory)] });
    const recorded = ledgerProvider.getTracer('warden');
    const plain = plainProvider.getTracer('warden');
    try {
      const timings = interleaveSync(quick ? 100 : 300, spans, {
        ledger: () => recorded.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end(),
        plain: (i) => {
          plain.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
          if (i % 500 === 0) memory.reset();
        },
      });
      // Whatever the processor defers (batching) must be in the ledger before the figure counts.
      const flushStarted = performance.now();
      await ledgerProvider.forceFlush();
      const flushMs = performance.now() - flushStarted;
      const ledgerSummary = summarize(timings.ledger);
      const plainSummary = summarize(timings.plain);
      const report = verifyLedger(ledger);
      if (!report.ok) throw new Error('the benchmark ledger does not verify');
      return {
        figures: [
          figure('custody.span', 'span start+end, recorded in the custody ledger', ledgerSummary, {
            baseline: { label: 'SimpleSpanProcessor -> InMemorySpanExporter', summary: plainSummary },
          }),
          figure('custody.added', 'added per span by the ledger (median - median)', single(ledgerSummary.median - plainSummary.median + flushMs / spans)),
        ],
        notes: [
          `${spans} spans each, interleaved; the final flush (${flushMs.toFixed(1)} ms) is spread over the spans in "added per span"; the ledger verifies (${report.totalRecords} records, ${report.checkpoints} checkpoints).`,
        ],
      };
    } finally {
      await ledgerProvider.shutdown();
      await plainProvider.shutdown();
      ledger.close();
    }
  },
};
