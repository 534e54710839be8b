/**
 * Cost of the custody ledger: raw appends per second, and the time a span takes to start and end
 * when it is recorded in the ledger (SimpleSpanProcessor -> LedgerSpanExporter: canonical JSON,
 * SHA-256, Ed25519, one SQLite transaction, a checkpoint every 100) against a plain OTel export
 * (SimpleSpanProcessor -> InMemorySpanExporter), measured interleaved in the same run.
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

    console.log(`custody ledger appends (synchronous=NORMAL, the default): ${normalRate.toFixed(0)}/s (${(1000 / normalRate).toFixed(3)} ms each)`);
    console.log(`custody ledger appends (synchronous=FULL, fsync per append): ${fullRate.toFixed(0)}/s (${(1000 / fullRate).toFixed(3)} ms each)`);
    console.log(summarize('span start+end, plain OTel export (SimpleSpanProcessor -> InMemorySpanExporter)', plainMs));
    console.log(summarize('span start+end, custody ledger export (SimpleSpanProcessor -> LedgerSpanExporter)', ledgerMs));
    console.log(
      `added time per span by the ledger: median ${(percentile(sortedLedger, 50) - percentile(sortedPlain, 50)).toFixed(3)} ms, p99 ${(percentile(sortedLedger, 99) - percentile(sortedPlain, 99)).toFixed(3)} ms`,
    );
    console.log(`verifying the ${report.totalRecords}-record ledger (${report.checkpoints} checkpoints): ${verifyMs.toFixed(0)} ms, ok=${report.ok}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
