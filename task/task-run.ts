/**
 * Shapes that cross the Temporal boundary for one agent task: the workflow input, the actions a
 * model driver proposes, the record of each step and the final result (`warden run --json`).
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { FileWriteSchema, StepArchiveSchema, type FileWrite, type StepArchive } from './data-refs';
import { TaskSchema, type Task } from './task-schema';
import { DataPlaneQueueSchema } from '../dataplane/worker-naming';
import { ProvenanceSeedSchema, type ProvenanceSeed } from '../policies/provenance-seed';
import { AlertSchema, ScoreReasonSchema, type Alert } from '../monitoring/alert';
import { ResponseSchema } from '../monitoring/response-rule';
import { ClaimOutcomeSchema, MAX_CLAIMS_PER_AGENT, StatedClaimSchema, type ClaimOutcome, type StatedClaim } from '../attestation/claim-outcome';

/**
 * `refuted`: the task ran to its end and its effects were committed, but Warden refuted at least
 * one claim an agent of the task made (see attestation/claim-outcome.ts); not a success.
 */
export const TASK_STATUSES = ['running', 'completed', 'failed', 'denied', 'cancelled', 'timed_out', 'limit_exceeded', 'refuted', 'blocked'] as const;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('task/task-run', () => {
  const TaskStatusSchema = z.enum(TASK_STATUSES);

  const ToolActionSchema = z.strictObject({
    type: z.literal('tool'),
    tool: z.string(),
    args: z.record(z.string(), z.unknown()),
    /** The model's own id for the call (openai-compatible), echoed back with the result. */
    callId: z.string().optional(),
  });
  const SpawnActionSchema = z.strictObject({
    type: z.literal('spawn'),
    subagent: z.string(),
    intent: z.string().optional(),
    callId: z.string().optional(),
  });
  const FinalActionSchema = z.strictObject({
    type: z.literal('final'),
    answer: z.string(),
    /** Sentences or structured claims; checked by Warden after the task commits, never trusted. */
    claims: z.array(StatedClaimSchema).max(MAX_CLAIMS_PER_AGENT),
  });
  /** A claim a model states while it works (the `state_claim` function), verified with the final answer's. */
  const ClaimActionSchema = z.strictObject({
    type: z.literal('claim'),
    claim: StatedClaimSchema,
    callId: z.string().optional(),
  });
  const ActionSchema = z.discriminatedUnion('type', [ToolActionSchema, SpawnActionSchema, FinalActionSchema, ClaimActionSchema]);

  /** Tokens one model call used, as the provider counted them (OpenTelemetry GenAI `gen_ai.usage.*`). */
  const ModelUsageSchema = z.strictObject({
    inputTokens: z.number().int().min(0),
    outputTokens: z.number().int().min(0),
    /** Input tokens served from the provider's prompt cache, when it says. */
    cachedInputTokens: z.number().int().min(0).optional(),
    /** Output tokens spent on reasoning, when the provider says. */
    reasoningTokens: z.number().int().min(0).optional(),
  });

  /** What a model driver returns for one turn: one or more actions, and the model that produced them. */
  const ModelTurnSchema = z.strictObject({
    actions: z.array(ActionSchema).min(1),
    model: z.strictObject({ id: z.string(), version: z.string() }),
    /** Raw assistant text, if any, for the transcript. */
    text: z.string().optional(),
    /** Tokens the call used (model drivers that call a provider). */
    usage: ModelUsageSchema.optional(),
  });

  /** One model turn of a task as its result records it: which model answered, how many actions, the tokens used. */
  const TurnRecordSchema = z.strictObject({
    /** 0-based turn index (steps name the turn that proposed them). */
    index: z.number().int().min(0),
    model: z.strictObject({ id: z.string(), version: z.string() }),
    actions: z.number().int().min(0),
    usage: ModelUsageSchema.optional(),
  });

  const DecisionSchema = z.enum(['allow', 'deny']);

  const MatchedInStepSchema = z.strictObject({ id: z.string(), sentence: z.string(), effect: z.string(), reason: z.string() });

  /**
   * What the policy engine said about a step, with the rules that matched; `shadow`: what rules in
   * shadow mode would have decided (recorded, not enforced); `applied`: the decision where the
   * effect was measured and applied (the sandbox host), when it held or refused the call.
   */
  const StepPolicySchema = z.strictObject({
    decision: z.enum(['allow', 'deny', 'approval']),
    matched: z.array(MatchedInStepSchema),
    shadow: z.strictObject({ decision: z.enum(['allow', 'deny', 'approval']), matched: z.array(MatchedInStepSchema) }).optional(),
    applied: z.strictObject({ decision: z.enum(['allow', 'deny', 'approval']), matched: z.array(MatchedInStepSchema), tool: z.string() }).optional(),
  });

  /** A capability call made while a step ran (a user tool's own calls, or a built-in's), as the policy gate decided it. */
  const StepEffectSchema = z.strictObject({
    /** The capability called (`sql.exec`, `http.fetch`, ...). */
    tool: z.string(),
    /** What Warden measured (rows by table, URL, path, ...). */
    effect: z.unknown(),
    decision: z.enum(['allow', 'deny', 'approval']),
    /** Deny and approval rules that matched (an approval a human gave), and shadow rules. */
    rules: z.array(z.string()),
    shadow: z.array(z.string()).optional(),
  });
  /** How a step held for approval was decided, and by whom. */
  const StepApprovalSchema = z.strictObject({
    requestId: z.string(),
    status: z.enum(['approved', 'denied', 'timed_out']),
    approver: z.string().optional(),
    /** Id (RFC 7638 thumbprint) of the registered approver key that signed the decision. */
    approverKey: z.string().optional(),
    reason: z.string().optional(),
    decidedAt: z.string(),
  });

  const StepErrorSchema = z.strictObject({
    code: z.string(),
    message: z.string(),
  });

  const StepRecordSchema = z.strictObject({
    index: z.number().int(),
    /** The model turn that proposed this action. */
    turn: z.number().int(),
    kind: z.enum(['tool', 'spawn']),
    /** Tool name, or `spawn:<sub-agent>` for a spawn. */
    tool: z.string(),
    args: z.record(z.string(), z.unknown()),
    callId: z.string().optional(),
    decision: DecisionSchema,
    reason: z.string(),
    executed: z.boolean(),
    output: z.unknown().optional(),
    error: StepErrorSchema.optional(),
    policy: StepPolicySchema.optional(),
    approval: StepApprovalSchema.optional(),
    /** Approvals of effects the sandbox host measured and held while the step ran (bound to that effect). */
    effectApprovals: z.array(StepApprovalSchema).optional(),
    /** The capability calls the step made, as decided where they were applied. */
    effects: z.array(StepEffectSchema).optional(),
    /** The call's own effect as measured where it was applied (a built-in's rows, tables, ...). */
    effect: z.unknown().optional(),
    /** Workspace paths the call wrote before it was stopped or failed, taken back out of the overlay (nothing of them is committed). */
    undone: z.array(z.string()).optional(),
    /** Whether the output is the user's own trusted data (task `trust`) or untrusted (tool output from outside). */
    trust: z.enum(['trusted', 'untrusted']).optional(),
    /** The per-call credential the tool ran under: ids, scope and expiry, never the token. */
    credential: z
      .strictObject({ jti: z.string(), scope: z.array(z.string()), expiresAt: z.string() })
      .optional(),
    startedAt: z.string(),
    durationMs: z.number(),
    /** The monitor's anomaly score of the action (0-100), why, and what it did about it (monitoring/). */
    monitor: z
      .strictObject({ score: z.number().int().min(0).max(100), reasons: z.array(ScoreReasonSchema), response: ResponseSchema.optional(), alertId: z.string().optional() })
      .optional(),
  });

  /** Who the agent is and on whose behalf it acts: its signed task grant, by id and hash only. */
  const TaskIdentitySchema = z.strictObject({
    agentId: z.string(),
    grantId: z.string(),
    grantHash: z.string(),
    /** The delegation (act) chain: the user, then each agent down to this one. */
    chain: z.array(z.string()),
    expiresAt: z.string(),
  });

  /** What recovery did when the task ended: committed its files, or rolled its effects back. */
  const TaskRecoverySchema = z.strictObject({
    /** Workspace paths made real by the commit (root task, completed). */
    committed: z.array(z.string()).optional(),
    /**
     * Not committed (`path (why)`): symbolic links and special files programs left in the workspace
     * overlay, and files held because they make host tools run code (recovery/host-code-files.ts).
     */
    notCommitted: z.array(z.string()).optional(),
    /** Compensations run, newest first, with what each did. */
    rolledBack: z.array(
      z.strictObject({ kind: z.string(), forTool: z.string().optional(), callId: z.string().optional(), status: z.string(), detail: z.string() }),
    ),
    /** Effects Warden could not undo (e.g. an HTTP request), by step. */
    notUndoable: z.array(z.string()),
    /** True when the pre-task snapshot was restored because compensation alone could not undo everything. */
    restoredSnapshot: z.boolean().optional(),
  });

  const TaskResultSchema: z.ZodType<TaskResult> = z.lazy(() =>
    z.strictObject({
      workflowId: z.string(),
      runId: z.string(),
      agent: z.string(),
      model: z.strictObject({ id: z.string(), version: z.string() }),
      depth: z.number().int(),
      identity: TaskIdentitySchema.optional(),
      status: TaskStatusSchema,
      reason: z.string().optional(),
      steps: z.array(StepRecordSchema),
      turns: z.array(TurnRecordSchema).optional(),
      children: z.array(TaskResultSchema),
      final: z.strictObject({ answer: z.string(), claims: z.array(StatedClaimSchema) }).nullable(),
      recovery: TaskRecoverySchema.optional(),
      claims: z.array(ClaimOutcomeSchema).optional(),
      compensations: z.array(z.unknown()).optional(),
      policyState: z.unknown().optional(),
      writes: z.array(FileWriteSchema).optional(),
      dataPlaneLost: z.boolean().optional(),
      earlier: StepArchiveSchema.optional(),
      alerts: z.array(AlertSchema).optional(),
    }),
  );

  /**
   * What a client may start `agentTask` with: the task, nothing else. Who the agent is, where it
   * sits in a task tree, its deadline and its policy counters are Warden's to decide: the root's in
   * `beginTask`, a sub-agent's handed over by its parent (`SubagentHandoffSchema`) and verified.
   */
  const PublicTaskInputSchema = z.strictObject({ task: TaskSchema });

  /**
   * What only a parent hands its sub-agent. Unforgeable: the parent's `delegateGrant` signs a grant
   * for exactly the child's workflow id whose `handoff` claim is the SHA-256 of the task and these
   * fields (all but `grantId`), and the child's `beginSubagent` activity accepts the handoff only
   * when that grant is one it can verify, unrevoked, delegated to the workflow asking, and its digest
   * matches; a client that passes these fields (or the older top-level ones) is refused.
   */
  const SubagentHandoffSchema = z.strictObject({
    /** The grant the parent delegated to this child. */
    grantId: z.string().min(1).max(64),
    depth: z.number().int().min(1).max(16),
    /** Workflow ids from the root task down to this one's parent. */
    lineage: z.array(z.string().min(1)).min(1).max(16),
    /** Epoch ms by which the sub-agent must end (never after its parent). */
    deadlineAt: z.number().int(),
    /** The root task's first run id: names the task tree's recovery state (absent in trees started before). */
    rootRunId: z.string().min(1).max(128).optional(),
    /** The parent's policy counters when it spawned the sub-agent. */
    policyState: z.unknown().optional(),
    /** The sub-agent's provenance: the root user's values and what its parent had from trusted data (never its own intent). */
    provenance: ProvenanceSeedSchema.optional(),
    /**
     * The task tree's data plane: the queue of the worker holding its overlay and sandbox host, and
     * how long a call may wait there before that worker counts as lost (workflows/data-plane-affinity.ts).
     * Signed with the rest: a starter cannot point a run at another task's worker.
     */
    dataPlane: z.strictObject({ taskQueue: DataPlaneQueueSchema, startTimeoutSeconds: z.number().int().min(1).max(3600) }).optional(),
  });

  /**
   * Input of the `agentTask` workflow: the public input, or a parent's handoff. The top-level
   * `depth`, `lineage`, `deadlineAt`, `identity` and `policyState` are how parents passed the
   * handoff before it was verified: accepted so recorded histories replay; in a new run they are a
   * claimed handoff like any other, and verified (a client cannot use them to skip a check).
   */
  const AgentTaskInputSchema = z.strictObject({
    task: TaskSchema,
    handoff: SubagentHandoffSchema.optional(),
    depth: z.number().int().min(0).optional(),
    lineage: z.array(z.string()).optional(),
    deadlineAt: z.number().int().optional(),
    identity: TaskIdentitySchema.optional(),
    policyState: z.unknown().optional(),
    /** A sub-agent's provenance: the root user's values and what its parent had from trusted data (never its own intent). */
    provenance: ProvenanceSeedSchema.optional(),
    /**
     * Tuning anyone may give (the data flow's knobs, task/data-flow.ts); the original loop reads
     * `dataPlaneStartTimeoutSeconds` only. Never a place: a root's data plane is where it was prepared.
     */
    flow: z
      .object({
        dataPlaneStartTimeoutSeconds: z.number().int().min(1).max(3600).optional(),
        /** The server's history limits, when lower than Temporal's defaults (workflows/history-budget.ts); only ever ends this task sooner. */
        maxHistoryEvents: z.number().int().min(200).max(51_200).optional(),
        maxHistoryBytes: z.number().int().min(256 * 1024).max(50 * 1024 * 1024).optional(),
      })
      .passthrough()
      .optional(),
  });
  return { TaskStatusSchema, ToolActionSchema, SpawnActionSchema, FinalActionSchema, ClaimActionSchema, ActionSchema, ModelUsageSchema, ModelTurnSchema, TurnRecordSchema, DecisionSchema, StepPolicySchema, StepEffectSchema, StepApprovalSchema, StepErrorSchema, StepRecordSchema, TaskIdentitySchema, TaskRecoverySchema, TaskResultSchema, PublicTaskInputSchema, SubagentHandoffSchema, AgentTaskInputSchema };
});

export const { TaskStatusSchema, ToolActionSchema, SpawnActionSchema, FinalActionSchema, ClaimActionSchema, ActionSchema, ModelUsageSchema, ModelTurnSchema, TurnRecordSchema, DecisionSchema, StepPolicySchema, StepEffectSchema, StepApprovalSchema, StepErrorSchema, StepRecordSchema, TaskIdentitySchema, TaskRecoverySchema, TaskResultSchema, PublicTaskInputSchema, SubagentHandoffSchema, AgentTaskInputSchema } = schemas;

export type TaskStatus = z.infer<typeof TaskStatusSchema>;

export type Action = z.infer<typeof ActionSchema>;

export type ToolAction = z.infer<typeof ToolActionSchema>;

export type SpawnAction = z.infer<typeof SpawnActionSchema>;

export type ClaimAction = z.infer<typeof ClaimActionSchema>;

export type { ClaimOutcome, StatedClaim };

export type ModelUsage = z.infer<typeof ModelUsageSchema>;

export type ModelTurn = z.infer<typeof ModelTurnSchema>;

export type TurnRecord = z.infer<typeof TurnRecordSchema>;

export type StepEffect = z.infer<typeof StepEffectSchema>;

export type StepApproval = z.infer<typeof StepApprovalSchema>;

export type Decision = z.infer<typeof DecisionSchema>;

export type StepError = z.infer<typeof StepErrorSchema>;

export type StepRecord = z.infer<typeof StepRecordSchema>;

export type TaskIdentity = z.infer<typeof TaskIdentitySchema>;

export type TaskRecovery = z.infer<typeof TaskRecoverySchema>;

export interface TaskResult {
  workflowId: string;
  runId: string;
  agent: string;
  model: { id: string; version: string };
  depth: number;
  identity?: TaskIdentity;
  status: TaskStatus;
  /** Why the task ended other than by completing. */
  reason?: string;
  steps: StepRecord[];
  /** Each model turn: model, number of actions, token usage. */
  turns?: TurnRecord[];
  children: TaskResult[];
  final: { answer: string; claims: StatedClaim[] } | null;
  recovery?: TaskRecovery;
  /**
   * The root task only: Warden's verdict on every claim of the task tree (its own agent's and
   * every sub-agent's), checked after the commit; verified ones carry a signed in-toto Statement.
   */
  claims?: ClaimOutcome[];
  /** A completed sub-agent's compensations, handed to its parent's saga (not run yet). */
  compensations?: unknown[];
  /** A sub-agent's policy counters, merged into its parent's (budgets span the whole tree). */
  policyState?: unknown;
  /** Files a sub-agent's steps left in the task tree's overlay, for its parent's commit check. */
  writes?: FileWrite[];
  /** A sub-agent whose data plane was lost (its worker died): its parent must recover the tree. */
  dataPlaneLost?: boolean;
  /**
   * Steps (and children) of earlier runs of a long task, archived in the blob store when it
   * continued as new; `steps` then holds the last run's only. `assembleTaskResult` puts them back.
   */
  earlier?: StepArchive;
  /** What the monitor raised about this agent (sub-agents' alerts are in their own results). */
  alerts?: Alert[];
}

export type PublicTaskInput = z.infer<typeof PublicTaskInputSchema>;

export type SubagentHandoff = z.infer<typeof SubagentHandoffSchema>;

export interface AgentTaskInput {
  task: Task;
  /** A sub-agent's handoff from its parent (see SubagentHandoffSchema). */
  handoff?: SubagentHandoff;
  /** @deprecated recorded histories only: see AgentTaskInputSchema. */
  depth?: number;
  /** @deprecated */
  lineage?: string[];
  /** @deprecated */
  deadlineAt?: number;
  /** @deprecated */
  identity?: TaskIdentity;
  /** @deprecated */
  policyState?: unknown;
  /** A sub-agent's provenance (from its parent's spawn). */
  provenance?: ProvenanceSeed;
  /** Tuning (see AgentTaskInputSchema). */
  flow?: { dataPlaneStartTimeoutSeconds?: number; maxHistoryEvents?: number; maxHistoryBytes?: number };
}

/** The handoff an input claims: its own, or the older top-level fields as one; undefined for a task a client started. */
export function claimedHandoffOf(input: AgentTaskInput): (Omit<SubagentHandoff, 'grantId'> & { grantId: string | undefined; legacy: boolean }) | undefined {
  if (input.handoff !== undefined) return { ...input.handoff, legacy: false };
  // Clients used to start a root task with `depth: 0, lineage: []` (recorded histories hold it):
  // a root still. Anything naming a place below a root, or an identity, claims a parent's handoff.
  const legacy = input.identity !== undefined || (input.lineage ?? []).length > 0 || (input.depth ?? 0) > 0;
  if (!legacy) return undefined;
  return {
    grantId: input.identity?.grantId,
    depth: input.depth ?? 0,
    lineage: input.lineage ?? [],
    deadlineAt: input.deadlineAt ?? 0,
    ...(input.policyState === undefined ? {} : { policyState: input.policyState }),
    legacy: true,
  };
}

/** What the `state` query returns while a task runs. */
/** An action held until a human approves or denies it (`warden approve|deny`). */
export interface PendingApproval {
  requestId: string;
  tool: string;
  args: Record<string, unknown>;
  rules: string[];
  /**
   * The effect Warden measured: for a step held by its policy check, the effect it measured
   * (e.g. `{ rowsChanged, operation }`); for an effect held where it was applied (the sandbox
   * host), `{ tool, measured, via? }`: the capability and what was measured (rows by table, URL, ...).
   */
  effect?: Record<string, unknown>;
  /** What the tool is, from its descriptor: executor, families, resolved hints. */
  descriptor?: { executor: string; families: string[]; hints: string[]; undoable: boolean };
  requestedAt: string;
  expiresAt: string;
}

export type TaskState = Omit<TaskResult, 'runId'> & { turn: number; pendingApprovals: PendingApproval[] };
