/**
 * The custody ledger in real runs: a task with a sub-agent runs on the real Temporal server with
 * Warden's worker (tracing on, as `warden run` has it), and then
 * - the ledger verifies and holds the model-call and tool-call spans of parent AND child with
 *   Warden's attributes (model, tool, credential jti, resources), and no token anywhere;
 * - `warden trace` prints the timeline with the records' seqs;
 * - `warden replay` replays both histories and finds each activity's record;
 * - with one activity record deleted from a copy of the ledger, replay names the mismatch, and
 *   `--repair` re-derives the record from the history;
 * - `--export` writes a history that `--file` replays offline.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { replayCommand } from '../../cli/commands/replay';
import { traceCommand } from '../../cli/commands/trace';
import { GEN_AI_ATTR, TEMPORAL_ATTR, WARDEN_ATTR } from '../../custody/attributes';
import { crossCheckHistory, DERIVED_RECORD_KIND } from '../../custody/history-cross-check';
import { LedgerReader } from '../../custody/ledger-reader';
import { SPAN_RECORD_KIND } from '../../custody/ledger-span-exporter';
import type { LedgerRecord } from '../../custody/ledger-record';
import type { TaskTimeline } from '../../custody/task-timeline';
import { verifyLedger } from '../../custody/verify-ledger';
import { findSecretsIn } from '../../identity/redact';
import type { TaskResult } from '../../task/task-run';
import { testTemporalAddress } from '../support/temporal';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let workspace: string;
let result: TaskResult;
let records: LedgerRecord[];
const scratch: string[] = [];

interface SpanBody {
  name: string;
  attributes: Record<string, unknown>;
}
const bodyOf = (r: LedgerRecord) => r.body as unknown as SpanBody;

/** A CLI io capturing output, pointed at the test server and `stateDir`. */
function cliIo(stateDir = TEST_STATE_DIR): CliIo & { out: () => string; err: () => string } {
  const { address, namespace } = testTemporalAddress();
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: { WARDEN_STATE_DIR: stateDir, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
    out: () => out,
    err: () => err,
  };
}

function readRecords(taskId: string, stateDir = TEST_STATE_DIR): LedgerRecord[] {
  const reader = LedgerReader.open({ stateDir });
  try {
    return reader.records(taskId);
  } finally {
    reader.close();
  }
}

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = await mkdtemp(join(tmpdir(), 'warden-custody-ws-'));
  await writeFile(join(workspace, 'notes.txt'), 'one two three');
  result = await env.runTask({
    user: 'alice@example.com',
    intent: 'read the notes and have them reviewed',
    agent: {
      name: 'lead',
      model: {
        driver: 'scripted',
        id: 'scripted-lead',
        version: '3',
        script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { spawn: 'reviewer' }, { final: 'reviewed', claims: ['notes reviewed'] }],
      },
    },
    tools: { builtin: ['fs.read', 'fs.list'] },
    grants: { tools: ['fs.read', 'fs.list'], subagents: ['reviewer'] },
    resources: { workspace },
    subagents: {
      reviewer: {
        intent: 'look at the workspace',
        agent: { name: 'reviewer', model: { driver: 'scripted', id: 'scripted-reviewer', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'looked' }] } },
        tools: { builtin: ['fs.list'] },
        grants: { tools: ['fs.list'] },
      },
    },
  });
  // The root run's span (and the task-end checkpoint) is recorded as the workflow's last activation completes.
  await vi.waitFor(
    () => {
      records = readRecords(result.workflowId);
      expect(records.some((r) => bodyOf(r).name === 'invoke_agent lead' && r.workflowId === result.workflowId)).toBe(true);
    },
    { timeout: 60_000, interval: 200 },
  );
}, 300_000);

afterAll(async () => {
  await env?.close();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('custody ledger in real runs', () => {
  it('records the model and tool calls of parent and sub-agent with Warden attributes, verifiably and without tokens', () => {
    expect(result.status).toBe('completed');
    const child = result.children[0];
    expect(child?.status).toBe('completed');
    const rootId = result.workflowId;
    const childId = child?.workflowId as string;
    expect(childId).toBe(`${rootId}/reviewer-1`);

    expect(verifyLedger({ stateDir: TEST_STATE_DIR }, { taskId: rootId })).toMatchObject({ ok: true, records: records.length });
    expect(new Set(records.map((r) => r.taskId))).toEqual(new Set([rootId]));

    const spans = (name: string, workflowId: string) => records.filter((r) => r.kind === SPAN_RECORD_KIND && bodyOf(r).name === name && r.workflowId === workflowId).map((r) => bodyOf(r).attributes);
    for (const [workflowId, model, step] of [
      [rootId, 'scripted-lead', result.steps[0]],
      [childId, 'scripted-reviewer', child?.steps[0]],
    ] as const) {
      // On the data flow a turn is a proposeTurn activity of its own, or folded into the activity
      // that brought it (placing the task, a tool call): a chat span with no activity type.
      const turns = spans(`chat ${model}`, workflowId);
      expect(turns.some((t) => t[TEMPORAL_ATTR.activityType] === 'proposeTurn')).toBe(true);
      for (const folded of turns) {
        expect([undefined, 'proposeTurn']).toContain(folded[TEMPORAL_ATTR.activityType]);
        expect(folded).toMatchObject({ [GEN_AI_ATTR.operationName]: 'chat', [GEN_AI_ATTR.requestModel]: model, [GEN_AI_ATTR.conversationId]: rootId, [WARDEN_ATTR.taskId]: rootId, [WARDEN_ATTR.outcome]: 'ok' });
        expect(folded[WARDEN_ATTR.promptSha256]).toMatch(/^[0-9a-f]{64}$/);
      }
      const turn = turns.find((t) => t[TEMPORAL_ATTR.activityType] === 'proposeTurn');
      expect(turn).toMatchObject({
        [TEMPORAL_ATTR.activityType]: 'proposeTurn',
        [GEN_AI_ATTR.providerName]: 'warden.scripted',
        [GEN_AI_ATTR.responseModel]: model,
        [GEN_AI_ATTR.conversationId]: rootId,
        [WARDEN_ATTR.taskId]: rootId,
        [WARDEN_ATTR.user]: 'alice@example.com',
        [GEN_AI_ATTR.operationName]: 'chat',
        [GEN_AI_ATTR.requestModel]: model,
        [WARDEN_ATTR.outcome]: 'ok',
      });
      expect(turn?.[WARDEN_ATTR.promptSha256]).toMatch(/^[0-9a-f]{64}$/);
      expect(turn?.[WARDEN_ATTR.intentSha256]).toMatch(/^[0-9a-f]{64}$/);

      const tools = spans(`execute_tool ${step?.tool}`, workflowId);
      expect(tools).toHaveLength(1);
      expect(step?.credential?.jti).toMatch(/\S/);
      expect(tools[0]).toMatchObject({
        [TEMPORAL_ATTR.activityType]: 'runTool',
        [WARDEN_ATTR.taskId]: rootId,
        [GEN_AI_ATTR.operationName]: 'execute_tool',
        [GEN_AI_ATTR.toolName]: step?.tool,
        [WARDEN_ATTR.credentialJti]: step?.credential?.jti,
        [WARDEN_ATTR.outcome]: 'ok',
      });
      expect(tools[0]?.[WARDEN_ATTR.toolArgsSha256]).toMatch(/^[0-9a-f]{64}$/);
      expect(tools[0]?.[WARDEN_ATTR.agentChain]).toEqual(expect.arrayContaining(['user:alice@example.com']));
    }
    expect(spans('execute_tool fs.read', rootId)[0]?.[WARDEN_ATTR.resourcesFiles]).toEqual(['notes.txt']);
    // The policy decision before each call is on record too, with the rules that were evaluated,
    // as Warden's own operation: not a GenAI tool execution (which would count every call twice).
    const [policy] = spans('check_policy fs.read', rootId);
    expect(policy).toMatchObject({ [WARDEN_ATTR.taskId]: rootId, [WARDEN_ATTR.policyDecision]: 'allow', [WARDEN_ATTR.policyTool]: 'fs.read', [WARDEN_ATTR.operationName]: 'check_policy' });
    expect(Object.keys(policy ?? {}).filter((k) => k.startsWith('gen_ai.'))).toEqual([]);
    expect(Array.isArray(policy?.[WARDEN_ATTR.policyRules])).toBe(true);
    expect(records.filter((r) => r.kind === SPAN_RECORD_KIND && bodyOf(r).attributes[GEN_AI_ATTR.operationName] === 'execute_tool')).toHaveLength(2);
    // Each agent's run is its invoke_agent span, the sub-agent's under the parent's trace.
    expect(spans('invoke_agent reviewer', childId)[0]).toMatchObject({ [GEN_AI_ATTR.operationName]: 'invoke_agent', [GEN_AI_ATTR.agentId]: childId, [WARDEN_ATTR.outcome]: 'completed', [WARDEN_ATTR.agentDepth]: 1 });
    // The child's intent differs from the parent's.
    expect(spans('chat scripted-reviewer', childId)[0]?.[WARDEN_ATTR.intentSha256]).not.toBe(spans('chat scripted-lead', rootId)[0]?.[WARDEN_ATTR.intentSha256]);
    expect(findSecretsIn(records)).toEqual([]);
  });

  it('warden trace prints the timeline, each line with its custody record', async () => {
    const io = cliIo();
    expect(await traceCommand([result.workflowId], io), io.err()).toBe(0);
    const text = io.out();
    const toolSeqs = records.filter((r) => r.kind === SPAN_RECORD_KIND && bodyOf(r).name.startsWith('execute_tool ')).map((r) => r.seq);
    for (const seq of toolSeqs) expect(text).toContain(`[${String(seq).padStart(4)}]`);
    expect(text).toMatch(/intent\s+intent sha256:/);
    expect(text).toMatch(/decision\s+#0 allow/);
    expect(text).toContain(`sub-agent ${result.workflowId}/reviewer-1`);
    expect(text).toMatch(/outcome\s+completed/);

    const json = cliIo();
    expect(await traceCommand([result.workflowId, '--json'], json)).toBe(0);
    const timeline = JSON.parse(json.out()) as TaskTimeline;
    // The lead's final answer states a claim (a sentence: recorded as unverified).
    expect(new Set(timeline.entries.map((e) => e.kind))).toEqual(new Set(['intent', 'model-turn', 'action', 'decision', 'tool-effect', 'subagent', 'claim', 'outcome']));
    expect(timeline.entries.filter((e) => e.kind === 'tool-effect').map((e) => e.seq)).toEqual(toolSeqs);
    expect(timeline.entries.filter((e) => e.kind === 'model-turn').every((e) => e.seq !== null)).toBe(true);
  });

  it('warden replay replays parent and sub-agent and finds every activity on record', async () => {
    const io = cliIo();
    expect(await replayCommand([result.workflowId], io), io.out() + io.err()).toBe(0);
    expect(io.out()).toContain(`${result.workflowId}/reviewer-1:`);
    expect(io.out()).toContain('replay: consistent');

    // A record of an activity the history does not have is named too.
    const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
    // Both forms of activity record count: GenAI-named (temporalActivityType) and the older RunActivity:<type>.
    const forged = { ...records[0], seq: 99_999, workflowId: result.workflowId, kind: 'span', body: { name: 'RunActivity:runTool', attributes: { temporalActivityId: '999' } } } as LedgerRecord;
    const forgedGenAi = {
      ...records[0],
      seq: 99_998,
      workflowId: result.workflowId,
      kind: 'span',
      body: { name: 'execute_tool fs.read', attributes: { temporalActivityType: 'runTool', temporalActivityId: '998' } },
    } as LedgerRecord;
    const report = crossCheckHistory(result.workflowId, history, [...records, forgedGenAi, forged]);
    expect(report.ok).toBe(false);
    expect(report.mismatches).toEqual([
      expect.objectContaining({ kind: 'record-without-history', activityType: 'runTool', activityId: '998', seqs: [99_998] }),
      expect.objectContaining({ kind: 'record-without-history', activityType: 'runTool', activityId: '999', seqs: [99_999] }),
    ]);
  }, 120_000);

  it('names a history/ledger mismatch when a record is missing, and --repair re-derives it from history', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'warden-custody-copy-'));
    scratch.push(copy);
    const source = new Database(join(TEST_STATE_DIR, 'custody.db'), { readonly: true });
    await source.backup(join(copy, 'custody.db'));
    source.close();
    cpSync(join(TEST_STATE_DIR, 'custody-keys'), join(copy, 'custody-keys'), { recursive: true });
    const childId = `${result.workflowId}/reviewer-1`;
    const victim = records.find((r) => bodyOf(r).name === 'execute_tool fs.list' && r.workflowId === childId) as LedgerRecord;
    const activityId = bodyOf(victim).attributes.temporalActivityId as string;
    const db = new Database(join(copy, 'custody.db'));
    db.prepare('DELETE FROM records WHERE seq = ?').run(victim.seq);
    db.close();

    const io = cliIo(copy);
    expect(await replayCommand([result.workflowId], io)).toBe(1);
    expect(io.out()).toContain(`MISMATCH missing-record: history event`);
    expect(io.out()).toContain(`(runTool activity ${activityId} completed) has no custody record`);
    expect(io.out()).toContain('replay: INCONSISTENT');

    const repair = cliIo(copy);
    expect(await replayCommand([result.workflowId, '--repair'], repair), repair.out()).toBe(0);
    expect(repair.out()).toMatch(/repaired: appended custody record \d+ re-derived from the history/);
    const derived = readRecords(result.workflowId, copy).filter((r) => r.kind === DERIVED_RECORD_KIND);
    expect(derived).toHaveLength(1);
    expect(derived[0]).toMatchObject({ workflowId: childId, recordKey: expect.stringMatching(new RegExp(`^history:${childId.replace(/[/-]/g, '\\$&')}:\\d+$`)), body: { activityType: 'runTool', activityId } });

    // Repairing again appends nothing; the trace shows the re-derived record.
    const again = cliIo(copy);
    expect(await replayCommand([result.workflowId, '--repair'], again)).toBe(0);
    expect(readRecords(result.workflowId, copy).filter((r) => r.kind === DERIVED_RECORD_KIND)).toHaveLength(1);
    const trace = cliIo(copy);
    expect(await traceCommand([result.workflowId], trace)).toBe(0);
    expect(trace.out()).toContain('(re-derived from history)');
  }, 120_000);

  it('exports a history with --export and replays it offline with --file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-history-'));
    scratch.push(dir);
    const file = join(dir, 'history.json');
    const exported = cliIo();
    expect(await replayCommand([result.workflowId, '--export', file], exported), exported.out()).toBe(0);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { workflowId: string; history: { events: { eventType: string }[] } };
    expect(stored.workflowId).toBe(result.workflowId);
    expect(stored.history.events[0]?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');

    const offline = cliIo();
    offline.env.TEMPORAL_ADDRESS = '127.0.0.1:1'; // nothing there: the file is all it needs
    expect(await replayCommand(['--file', file], offline), offline.out() + offline.err()).toBe(0);
    expect(offline.out()).toContain('replay: consistent');
  }, 120_000);
});
