/**
 * Cost of the custody ledger: raw appends per second (SQLite file; shared PostgreSQL one record
 * per transaction and in group-commit batches), and the time a span takes to start and end when
 * it is recorded in the ledger against a plain OTel export (SimpleSpanProcessor ->
 * InMemorySpanExporter), measured interleaved in the same run:
 *   sync   the span is appended inside end() (canonical JSON, SHA-256, Ed25519, one transaction)
 *   group  end() only queues; batches are appended off the hot path (what workers use); the
 *          amortised cost of writing them is reported separately, per span.
 * PostgreSQL: WARDEN_BENCH_DATABASE_URL, else .ci/postgres.sh starts one on 127.0.0.1:55432
 * (skipped with a note when neither works).
 * Run: node --require tsx/cjs bench/custody.bench.ts [spans]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from '../custody/attributes';
import { CustodyLedger } from '../custody/ledger';
import { LedgerSpanExporter, LedgerSpanProcessor } from '../custody/ledger-span-exporter';
import { verifyLedger } from '../custody/verify-ledger';
import { SharedCustodyLedger } from '../custody/shared-ledger';
import { benchDatabase } from './bench-database';
import { summarize, percentile } from './stats';

const WARMUP = 200;

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

function appendRate(label: string, ledger: CustodyLedger, count: number): number {
  const body = { name: 'execute_tool fs.read', attributes: ATTRIBUTES, start: '2026-01-01T00:00:00.000000000Z', end: '2026-01-01T00:00:00.041000000Z' };
  const started = performance.now();
  for (let i = 0; i < count; i += 1) ledger.append({ recordKey: `${label}-${i}`, taskId: 'bench', workflowId: 'bench', kind: 'span', body: { ...body, i } });
  const seconds = (performance.now() - started) / 1000;
  return count / seconds;
}

async function sharedAppendRate(ledger: SharedCustodyLedger, label: string, count: number, batch: number): Promise<number> {
  const body = { name: 'execute_tool fs.read', attributes: ATTRIBUTES, start: '2026-01-01T00:00:00.000000000Z', end: '2026-01-01T00:00:00.041000000Z' };
  const started = performance.now();
  for (let i = 0; i < count; i += batch) {
    await ledger.appendMany(Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({ recordKey: `${label}-${i + j}`, taskId: 'bench', workflowId: 'bench', kind: 'span', body: { ...body, i: i + j } })));
  }
  return count / ((performance.now() - started) / 1000);
}

/** Hot-path time of span start+end with a group-commit exporter, then the time to flush them all. */
async function groupSpanCost(exporter: LedgerSpanExporter, spans: number): Promise<{ hotMs: number[]; flushMsPerSpan: number }> {
  const resource = new Resource({ 'service.name': 'warden-bench' });
  const tracer = new BasicTracerProvider({ resource, spanProcessors: [new LedgerSpanProcessor(exporter)] }).getTracer('warden');
  const hotMs: number[] = [];
  const started = performance.now();
  for (let i = 0; i < spans; i += 1) {
    const t = performance.now();
    tracer.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
    hotMs.push(performance.now() - t);
    // A workflow task or activity ends every 10 spans: the barrier the worker awaits.
    if (i % 10 === 9) await exporter.flush();
  }
  await exporter.flush();
  const total = performance.now() - started;
  const hot = hotMs.reduce((a, b) => a + b, 0);
  return { hotMs, flushMsPerSpan: (total - hot) / spans };
}

async function main(): Promise<void> {
  const spans = Number(process.argv[2] ?? 3000);
  const dir = mkdtempSync(join(tmpdir(), 'warden-custody-bench-'));
  try {
    // Raw appends, at both durability settings.
    const normal = CustodyLedger.open({ stateDir: join(dir, 'normal') });
    const full = CustodyLedger.open({ stateDir: join(dir, 'full'), synchronous: 'full' });
    appendRate('warmup', normal, WARMUP);
    const normalRate = appendRate('raw', normal, spans);
    const fullRate = appendRate('raw', full, Math.min(spans, 500));
    full.close();

    // Span export: ledger vs in-memory, interleaved.
    const ledger = CustodyLedger.open({ stateDir: join(dir, 'spans') });
    const resource = new Resource({ 'service.name': 'warden-bench' });
    const recorded = new BasicTracerProvider({ resource, spanProcessors: [new LedgerSpanProcessor(new LedgerSpanExporter({ ledger }))] }).getTracer('warden');
    const memory = new InMemorySpanExporter();
    const plain = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('warden');
    const ledgerMs: number[] = [];
    const plainMs: number[] = [];
    for (let i = 0; i < WARMUP + spans; i += 1) {
      let started = performance.now();
      recorded.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
      const ledgerTime = performance.now() - started;
      started = performance.now();
      plain.startSpan('execute_tool fs.read', { attributes: ATTRIBUTES }).end();
      const plainTime = performance.now() - started;
      if (i % 500 === 0) memory.reset();
      if (i < WARMUP) continue;
      ledgerMs.push(ledgerTime);
      plainMs.push(plainTime);
    }
    const sortedLedger = [...ledgerMs].sort((a, b) => a - b);
    const sortedPlain = [...plainMs].sort((a, b) => a - b);
    const verifyStarted = performance.now();
    const report = verifyLedger(ledger);
    const verifyMs = performance.now() - verifyStarted;
    ledger.close();
    normal.close();

    // Group commit on the SQLite ledger: hot path vs plain, interleaved runs of the same size.
    const groupLedger = CustodyLedger.open({ stateDir: join(dir, 'group') });
    const group = await groupSpanCost(new LedgerSpanExporter({ ledger: groupLedger, commit: 'group' }), spans);
    groupLedger.close();

    console.log(`custody ledger appends (synchronous=NORMAL, the default): ${normalRate.toFixed(0)}/s (${(1000 / normalRate).toFixed(3)} ms each)`);
    console.log(`custody ledger appends (synchronous=FULL, fsync per append): ${fullRate.toFixed(0)}/s (${(1000 / fullRate).toFixed(3)} ms each)`);
    console.log(summarize('span start+end, plain OTel export (SimpleSpanProcessor -> InMemorySpanExporter)', plainMs));
    console.log(summarize('span start+end, custody ledger export (SimpleSpanProcessor -> LedgerSpanExporter)', ledgerMs));
    console.log(
      `added time per span by the ledger: median ${(percentile(sortedLedger, 50) - percentile(sortedPlain, 50)).toFixed(3)} ms, p99 ${(percentile(sortedLedger, 99) - percentile(sortedPlain, 99)).toFixed(3)} ms`,
    );
    console.log(`verifying the ${report.totalRecords}-record ledger (${report.checkpoints} checkpoints): ${verifyMs.toFixed(0)} ms, ok=${report.ok}`);
    const groupSorted = [...group.hotMs].sort((a, b) => a - b);
    console.log(summarize('span start+end, custody ledger GROUP commit (hot path: queued)', group.hotMs));
    console.log(
      `added time per span by the ledger with group commit: median ${(percentile(groupSorted, 50) - percentile(sortedPlain, 50)).toFixed(3)} ms on the hot path (target 0.1), ` +
        `p99 ${(percentile(groupSorted, 99) - percentile(sortedPlain, 99)).toFixed(3)} ms; batches written off the hot path at ${group.flushMsPerSpan.toFixed(3)} ms per span`,
    );

    const shared = await benchDatabase();
    if (shared === undefined) {
      console.log('shared PostgreSQL ledger: skipped (no PostgreSQL: set WARDEN_BENCH_DATABASE_URL or install Debian postgresql)');
    } else {
      try {
        const sharedLedger = SharedCustodyLedger.open({ db: shared.db, keyDir: join(dir, 'shared-keys'), workerId: 'bench' });
        await sharedAppendRate(sharedLedger, 'warm', 100, 1);
        const one = await sharedAppendRate(sharedLedger, 'one', Math.min(spans, 1000), 1);
        const fifty = await sharedAppendRate(sharedLedger, 'fifty', spans, 50);
        console.log(`shared PostgreSQL ledger appends, one record per transaction: ${one.toFixed(0)}/s (${(1000 / one).toFixed(3)} ms each)`);
        console.log(`shared PostgreSQL ledger appends, group commit of 50: ${fifty.toFixed(0)}/s (${(1000 / fifty).toFixed(3)} ms per record)`);
        const sharedGroup = await groupSpanCost(new LedgerSpanExporter({ ledger: sharedLedger, commit: 'group' }), spans);
        const sharedSorted = [...sharedGroup.hotMs].sort((a, b) => a - b);
        console.log(
          `shared PostgreSQL ledger, group commit: added ${(percentile(sharedSorted, 50) - percentile(sortedPlain, 50)).toFixed(3)} ms per span on the hot path (median), ` +
            `${sharedGroup.flushMsPerSpan.toFixed(3)} ms per span written off it (flushed every 10 spans)`,
        );
      } finally {
        await shared.drop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
