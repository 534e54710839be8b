/**
 * `custody`: the time a tool-call span takes to start and end when the custody ledger records it,
 * through the same telemetry a worker sets up (`setupProcessTelemetry`: the ledger exporter and
 * processor with the worker's settings), next to a plain OpenTelemetry export
 * (SimpleSpanProcessor -> InMemorySpanExporter), interleaved. Whatever the ledger defers is
 * flushed every 10 spans, as a worker does at the end of each activity and workflow task, and
 * counted separately. Also, interleaved: the same span with a synchronous ledger export (each
 * span appended inside end()); and, when PostgreSQL is available (WARDEN_BENCH_DATABASE_URL or
 * .ci/postgres.sh), appends to the shared ledger one record per transaction and 50 per batch.
 * Target: at most 0.1 ms added per span on the hot path (median).
 */
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from '../../custody/attributes';
import { CustodyLedger } from '../../custody/ledger';
import { LedgerSpanExporter, LedgerSpanProcessor } from '../../custody/ledger-span-exporter';
import { SharedCustodyLedger } from '../../custody/shared-ledger';
import { verifyLedger } from '../../custody/verify-ledger';
import { setupProcessTelemetry } from '../../telemetry/process-telemetry';
import { figure, single, type BenchSection, type Figure } from '../bench-section';
import { summarize } from '../stats';
import { benchDatabase } from '../support/bench-database';

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
    const syncLedger = CustodyLedger.open({ stateDir: join(tmpDir, 'custody-sync') });
    const syncProvider = new BasicTracerProvider({
      resource: new Resource({ 'service.name': 'warden-bench' }),
      spanProcessors: [new LedgerSpanProcessor(new LedgerSpanExporter({ ledger: syncLedger, commit: 'sync' }))],
    });
    const syncTracer = syncProvider.getTracer('warden');
    const syncMs: number[] = [];
    const memory = new InMemorySpanExporter();
    const plainProvider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'warden-bench' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
    const plain = plainProvider.getTracer('warden');
    const ledgerMs: number[] = [];
    const plainMs: number[] = [];
    let flushMs = 0;
    try {
      for (let round = 0; round < warmup + spans; round += 1) {
        const order = round % 2 === 0 ? (['ledger', 'plain', 'sync'] as const) : (['sync', 'plain', 'ledger'] as const);
        for (const which of order) {
          const tracer = which === 'ledger' ? telemetry.tracer : which === 'sync' ? syncTracer : plain;
          const started = performance.now();
          tracer.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
          const elapsed = performance.now() - started;
          if (round >= warmup) (which === 'ledger' ? ledgerMs : which === 'sync' ? syncMs : plainMs).push(elapsed);
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
      const shared = await sharedLedgerFigures(tmpDir, quick);
      return {
        figures: [
          figure('custody.span', 'span start+end, recorded in the custody ledger', ledgerSummary, {
            baseline: { label: 'SimpleSpanProcessor -> InMemorySpanExporter', summary: plainSummary },
          }),
          figure('custody.added', 'added per span on the hot path (median - median)', single(ledgerSummary.median - plainSummary.median)),
          figure('custody.written', 'per span incl. deferred writes (hot path + flushes, mean)', single((hotTotal + flushMs) / spans)),
          figure('custody.sync', 'span start+end, synchronous ledger export (append inside end())', summarize(syncMs), {
            baseline: { label: 'SimpleSpanProcessor -> InMemorySpanExporter', summary: plainSummary },
          }),
          ...shared.figures,
        ],
        notes: [
          `${spans} spans each, interleaved, flushed every 10 (flushes took ${flushMs.toFixed(0)} ms in all); the ledger verifies (${report.totalRecords} records, ${report.checkpoints} checkpoints).`,
          ...shared.notes,
        ],
      };
    } finally {
      await telemetry.shutdown();
      await plainProvider.shutdown();
      await syncProvider.shutdown();
      syncLedger.close();
    }
  },
};

/** Appends to the shared PostgreSQL ledger, one record per transaction and 50 per batch, in ms per record. */
async function sharedLedgerFigures(tmpDir: string, quick: boolean): Promise<{ figures: Figure[]; notes: string[] }> {
  const database = await benchDatabase();
  if (database === undefined) return { figures: [], notes: ['Shared PostgreSQL ledger skipped: no PostgreSQL (set WARDEN_BENCH_DATABASE_URL, or let .ci/postgres.sh install Debian postgresql).'] };
  const ledger = SharedCustodyLedger.open({ db: database.db, keyDir: join(tmpDir, 'shared-keys'), workerId: 'bench' });
  const body = { name: 'execute_tool fs.read', attributes: ATTRIBUTES, start: '2026-01-01T00:00:00.000000000Z', end: '2026-01-01T00:00:00.041000000Z' };
  const perRecord = async (label: string, count: number, batch: number) => {
    const started = performance.now();
    for (let i = 0; i < count; i += batch) {
      await ledger.appendMany(
        Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({ recordKey: `${label}-${i + j}`, taskId: 'bench', workflowId: 'bench', kind: 'span', body: { ...body, i: i + j } })),
      );
    }
    return (performance.now() - started) / count;
  };
  try {
    await perRecord('warm', 50, 1);
    const one = await perRecord('one', quick ? 200 : 500, 1);
    const batched = await perRecord('fifty', quick ? 1000 : 3000, 50);
    return {
      figures: [figure('custody.shared.batch', 'shared PostgreSQL ledger append, group commit of 50 (per record)', single(batched), { baseline: { label: 'one record per transaction', summary: single(one) } })],
      notes: [],
    };
  } finally {
    await ledger.close();
    await database.drop();
  }
}
