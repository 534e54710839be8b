/**
 * A task as a forensic timeline: intent → model turns → proposed actions → decisions → tool
 * effects → sub-agents → outcome, each entry naming the custody record (seq) that backs it.
 *
 * What the ledger holds is authoritative for what ran (the activity spans: model calls, tool
 * effects, the credential used); what the workflow decided (the steps: proposed actions and
 * their decisions) comes from the task's result or state, as recorded in its Temporal history,
 * and is tied to the record of the workflow span it happened in. Entries with no record say so
 * (`seq: null`): on a healthy ledger only decisions that ran nothing lack a record of their own.
 */
import type { StepRecord, TaskResult, TaskState } from '../task/task-run';
import { GEN_AI_ATTR, TEMPORAL_ATTR, WARDEN_ATTR } from './attributes';
import { DERIVED_RECORD_KIND } from './history-cross-check';
import type { LedgerRecord } from './ledger-record';
import { activityTypeOfSpan, spanRoleOf } from './span-roles';
import { cutText } from '../cut-text';
import { terminalLine } from '../terminal-text';

export type TimelineKind = 'intent' | 'model-turn' | 'action' | 'decision' | 'tool-effect' | 'subagent' | 'outcome' | 'claim' | 'monitor' | 'response';

/** Kind of the custody record of Warden's verdict on a claim (attestation/claim-outcome.ts). */
const CLAIM_VERDICT_KIND = 'claim-verdict';

export interface TimelineEntry {
  kind: TimelineKind;
  /** Custody record backing this entry, or null when none does. */
  seq: number | null;
  workflowId: string;
  /** 0 for the task the user started, 1 for its sub-agents, ... */
  depth: number;
  text: string;
}

export interface TaskTimeline {
  taskId: string;
  /** Records of the task in the ledger. */
  records: number;
  /** Whether the workflow's result/state (decisions) was available. */
  withDecisions: boolean;
  entries: TimelineEntry[];
}

interface SpanBody {
  name: string;
  attributes: Record<string, unknown>;
  status?: { code?: string; message?: string };
}

function bodyOf(record: LedgerRecord): SpanBody {
  const body = record.body as Partial<SpanBody> & Record<string, unknown>;
  if (record.kind === DERIVED_RECORD_KIND) {
    return {
      name: `RunActivity:${String(body.activityType)}`,
      attributes: {
        [TEMPORAL_ATTR.activityType]: String(body.activityType),
        'warden.derived': true,
        [WARDEN_ATTR.outcome]: body.outcome === 'completed' ? 'ok' : String(body.failureType ?? 'failed'),
        ...(typeof body.toolName === 'string' ? { [GEN_AI_ATTR.toolName]: body.toolName } : {}),
        ...(typeof body.toolArgsSha256 === 'string' ? { [WARDEN_ATTR.toolArgsSha256]: body.toolArgsSha256 } : {}),
        ...(typeof body.activityId === 'string' ? { temporalActivityId: body.activityId } : {}),
      },
    };
  }
  return { name: typeof body.name === 'string' ? body.name : '', attributes: (body.attributes ?? {}) as Record<string, unknown> };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const short = (hash: unknown): string => (typeof hash === 'string' ? `${hash.slice(0, 16)}…` : '?');

/** Records of one workflow, indexed by what they are. */
class WorkflowRecords {
  readonly turns: LedgerRecord[] = [];
  readonly tools: LedgerRecord[] = [];
  /** The monitor's responses (alerts, blocks, kills), by alert id. */
  readonly responses = new Map<string, LedgerRecord>();
  run: LedgerRecord | undefined;
  start: LedgerRecord | undefined;
  private readonly usedTools = new Set<number>();

  add(record: LedgerRecord): void {
    const { name, attributes } = bodyOf(record);
    const role = spanRoleOf(name, attributes);
    if (role === 'model-turn') this.turns.push(record);
    else if (role === 'tool-call') this.tools.push(record);
    else if (activityTypeOfSpan(name, attributes) === 'respondToAnomaly') {
      const id = str(attributes[WARDEN_ATTR.monitorAlertId]);
      if (id !== undefined) this.responses.set(id, record);
    } else if (role === 'agent-run') this.run ??= record;
    else if (role === 'task-start') this.start ??= record;
  }

  /** The model-call records, one per turn (retried attempts of a turn share its activity id). */
  turnRecords(): LedgerRecord[] {
    const seen = new Map<string, LedgerRecord>();
    for (const record of this.turns) {
      const id = str(bodyOf(record).attributes.temporalActivityId) ?? `seq${record.seq}`;
      seen.set(id, record); // the last attempt is the one whose answer counted
    }
    return [...seen.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The tool-call record of a step: same tool and argument hash (and jti when known), first unused. */
  toolRecordFor(step: StepRecord, argsSha256: string | undefined): LedgerRecord | undefined {
    const candidates = this.tools.filter((r) => !this.usedTools.has(r.seq) && str(bodyOf(r).attributes[GEN_AI_ATTR.toolName]) === step.tool);
    const best =
      candidates.find((r) => step.credential !== undefined && bodyOf(r).attributes[WARDEN_ATTR.credentialJti] === step.credential.jti) ??
      candidates.find((r) => argsSha256 !== undefined && bodyOf(r).attributes[WARDEN_ATTR.toolArgsSha256] === argsSha256) ??
      candidates[0];
    if (best !== undefined) this.usedTools.add(best.seq);
    return best;
  }
}

export interface BuildTimelineOptions {
  /** The task's result (or running state), for the proposed actions and decisions. */
  result?: TaskResult | TaskState;
  /** Hash of a step's arguments as the worker computes it (canonical JSON SHA-256). */
  argsSha256?: (args: unknown) => string | undefined;
}

/** Builds the timeline of task `taskId` from its custody records (and its result when given). */
export function buildTaskTimeline(taskId: string, records: readonly LedgerRecord[], options: BuildTimelineOptions = {}): TaskTimeline {
  const byWorkflow = new Map<string, WorkflowRecords>();
  const of = (workflowId: string) => {
    let entry = byWorkflow.get(workflowId);
    if (entry === undefined) byWorkflow.set(workflowId, (entry = new WorkflowRecords()));
    return entry;
  };
  for (const record of records) of(record.workflowId).add(record);
  const entries: TimelineEntry[] = [];
  const push = (entry: TimelineEntry) => entries.push(entry);

  const intentRecord = records.find((r) => str(bodyOf(r).attributes[WARDEN_ATTR.intentSha256]) !== undefined);
  const root = of(taskId);
  if (intentRecord !== undefined) {
    const a = bodyOf(intentRecord).attributes;
    push({ kind: 'intent', seq: intentRecord.seq, workflowId: taskId, depth: 0, text: `intent sha256:${short(a[WARDEN_ATTR.intentSha256])} from ${str(a[WARDEN_ATTR.user]) ?? '?'}` });
  } else {
    push({ kind: 'intent', seq: root.start?.seq ?? null, workflowId: taskId, depth: 0, text: 'intent: no record carries its hash' });
  }

  const turnText = (record: LedgerRecord, turn: number) => {
    const a = bodyOf(record).attributes;
    const derived = a['warden.derived'] === true ? ' (re-derived from history)' : '';
    return `model turn ${turn}: ${str(a[GEN_AI_ATTR.requestModel]) ?? '?'}@${str(a[WARDEN_ATTR.modelVersion]) ?? '?'}, prompt sha256:${short(a[WARDEN_ATTR.promptSha256])}, ${str(a[WARDEN_ATTR.outcome]) ?? '?'}${derived}`;
  };
  const effectText = (record: LedgerRecord | undefined) => {
    if (record === undefined) return 'no custody record of this call';
    const a = bodyOf(record).attributes;
    const touched = [WARDEN_ATTR.resourcesFiles, WARDEN_ATTR.resourcesHosts, WARDEN_ATTR.resourcesTables]
      .flatMap((k) => (Array.isArray(a[k]) ? (a[k] as unknown[]).map(String) : []))
      .join(', ');
    return `${str(a[GEN_AI_ATTR.toolName]) ?? 'tool'} ran: ${str(a[WARDEN_ATTR.outcome]) ?? '?'}${a[WARDEN_ATTR.credentialJti] === undefined ? '' : `, credential jti ${String(a[WARDEN_ATTR.credentialJti])}`}${touched === '' ? '' : `, touched ${touched}`}${a['warden.derived'] === true ? ' (re-derived from history)' : ''}`;
  };

  const walk = (workflowId: string, depth: number, state: TaskResult | TaskState | undefined) => {
    const w = of(workflowId);
    const turns = w.turnRecords();
    if (state === undefined) {
      // Ledger only: model turns and tool effects in record order.
      const all = [...turns.map((r) => ({ r, kind: 'model-turn' as const })), ...w.tools.map((r) => ({ r, kind: 'tool-effect' as const }))].sort((a, b) => a.r.seq - b.r.seq);
      let turn = 0;
      for (const { r, kind } of all) push({ kind, seq: r.seq, workflowId, depth, text: kind === 'model-turn' ? turnText(r, turn++) : effectText(r) });
      for (const child of [...byWorkflow.keys()].filter((id) => id.startsWith(`${workflowId}/`) && !id.slice(workflowId.length + 1).includes('/'))) {
        push({ kind: 'subagent', seq: of(child).run?.seq ?? null, workflowId: child, depth: depth + 1, text: `sub-agent ${child}` });
        walk(child, depth + 1, undefined);
      }
      if (w.run !== undefined) push({ kind: 'outcome', seq: w.run.seq, workflowId, depth, text: `workflow run ended (${bodyOf(w.run).status?.code ?? 'see record'})` });
      return;
    }
    const maxTurn = Math.max('turn' in state ? state.turn : 0, ...state.steps.map((s) => s.turn + 1), turns.length);
    for (let turn = 0; turn < maxTurn; turn += 1) {
      const record = turns[turn];
      push({ kind: 'model-turn', seq: record?.seq ?? null, workflowId, depth, text: record === undefined ? `model turn ${turn}: no custody record` : turnText(record, turn) });
      for (const step of state.steps.filter((s) => s.turn === turn)) {
        push({ kind: 'action', seq: record?.seq ?? null, workflowId, depth, text: `#${step.index} proposed ${step.kind === 'spawn' ? step.tool : `${step.tool} ${cutText(JSON.stringify(step.args) ?? '', 120)}`}` });
        const rules = step.policy?.matched.map((m) => m.id) ?? [];
        push({
          kind: 'decision',
          seq: w.run?.seq ?? null,
          workflowId,
          depth,
          text: `#${step.index} ${step.decision}: ${step.reason}${rules.length > 0 ? ` (rules ${rules.join(', ')})` : ''}${step.approval === undefined ? '' : ` [approval ${step.approval.status}${step.approval.approver ? ` by ${step.approval.approver}` : ''}]`}`,
        });
        let call: LedgerRecord | undefined;
        if (step.kind === 'tool' && step.executed) call = w.toolRecordFor(step, options.argsSha256?.(step.args));
        if (step.monitor !== undefined && (step.monitor.score > 0 || step.monitor.response !== undefined)) {
          const response = step.monitor.alertId === undefined ? undefined : w.responses.get(step.monitor.alertId);
          push({ kind: 'monitor', seq: response?.seq ?? call?.seq ?? w.run?.seq ?? null, workflowId, depth, text: monitorText(step) });
        }
        if (step.kind === 'tool' && step.executed) {
          push({ kind: 'tool-effect', seq: call?.seq ?? null, workflowId, depth, text: `#${step.index} ${effectText(call)}${step.error === undefined ? '' : ` (${step.error.code})`}` });
        }
        if (step.kind === 'spawn') {
          const childId = `${workflowId}/${step.tool.slice('spawn:'.length)}-${step.index}`;
          const child = state.children.find((c) => c.workflowId === childId);
          if (child !== undefined || byWorkflow.has(childId)) {
            push({ kind: 'subagent', seq: of(childId).run?.seq ?? of(childId).start?.seq ?? null, workflowId: childId, depth: depth + 1, text: `sub-agent ${childId} (${child?.agent ?? '?'})` });
            walk(childId, depth + 1, child);
          }
        }
      }
    }
    for (const alert of ('alerts' in state ? (state.alerts ?? []) : []).filter((a) => a.stepIndex === undefined || a.source !== 'monitor')) {
      const record = w.responses.get(alert.id);
      const by = alert.operator === undefined ? '' : ` by ${alert.operator}`;
      const blocked = alert.blockedAt === undefined ? '' : `, credentials revoked ${Math.round(alert.detectionToBlockMs ?? 0)} ms after detection`;
      push({ kind: 'response', seq: record?.seq ?? null, workflowId, depth, text: `${alert.response} (${alert.source}${by})${alert.reason === undefined ? '' : `: ${alert.reason}`}${blocked} [alert ${alert.id}]` });
    }
    const status = 'status' in state ? state.status : 'running';
    push({
      kind: 'outcome',
      seq: w.run?.seq ?? null,
      workflowId,
      depth,
      text: `${status}${'reason' in state && state.reason !== undefined ? `: ${state.reason}` : ''}${state.final === null ? '' : ` — final answer: ${cutText(state.final.answer, 120)}`}`,
    });
  };
  walk(taskId, 0, options.result);
  // After the outcome: Warden's verdict on each claim of the tree, checked after the commit.
  for (const record of records.filter((r) => r.kind === CLAIM_VERDICT_KIND).sort((a, b) => a.seq - b.seq)) {
    const body = record.body as { agent?: unknown; text?: unknown; verdict?: unknown; reason?: unknown };
    const depth = Math.max(0, record.workflowId.split('/').length - taskId.split('/').length);
    push({ kind: 'claim', seq: record.seq, workflowId: record.workflowId, depth, text: `${str(body.verdict) ?? '?'}: ${str(body.agent) ?? '?'} claimed ${cutText(str(body.text) ?? '?', 160)} — ${cutText(str(body.reason) ?? '', 200)}` });
  }
  return { taskId, records: records.length, withDecisions: options.result !== undefined, entries };
}

/** A scored step in words: `#3 anomaly score 95 (rows-jump: ..., new-operation: ...) -> remediate [alert a-...]`. */
function monitorText(step: StepRecord): string {
  const m = step.monitor!;
  const why = m.reasons.map((r) => `${r.signal}: ${r.detail}`).join('; ');
  return `#${step.index} anomaly score ${m.score}${why === '' ? '' : ` (${why})`}${m.response === undefined ? '' : ` -> ${m.response}`}${m.alertId === undefined ? '' : ` [alert ${m.alertId}]`}`;
}

/** The timeline as text, one entry a line: `[seq] kind  text`, indented by depth. */
export function formatTaskTimeline(timeline: TaskTimeline): string {
  const lines = [`task ${timeline.taskId}: ${timeline.records} custody record${timeline.records === 1 ? '' : 's'}${timeline.withDecisions ? '' : ' (decisions unavailable: the workflow could not be asked)'}`];
  for (const entry of timeline.entries) {
    const seq = entry.seq === null ? '[   -]' : `[${String(entry.seq).padStart(4)}]`;
    lines.push(`${seq} ${'  '.repeat(entry.depth)}${entry.kind.padEnd(11)} ${entry.text}`);
  }
  // An entry's text quotes a tool's arguments and outcome: others' text, one line each (../terminal-text.ts).
  return `${lines.map(terminalLine).join('\n')}\n`;
}
