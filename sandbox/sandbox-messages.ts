/**
 * Messages between the worker and the sandbox host process. Everything that crosses is plain
 * JSON validated on arrival: the host trusts nothing the worker did not spell out, and the worker
 * trusts nothing the host (which runs untrusted code) sends back beyond this shape.
 */
import { z } from 'zod';
import { CAPABILITY_NAMES } from '../tools/tool-descriptor';
import { CompiledRuleSchema } from '../policies/engine/compile-rule';
import { MatchedRuleSchema, PolicyAgentSchema, PolicyRequestSchema, ValueSourceSchema } from '../policies/engine/policy-request';
import { ProvenanceSeedSchema } from '../policies/provenance-seed';
import { EgressWatchSchema } from '../monitoring/egress-watch';

/**
 * One entry of an http grant: `host` / `host:port` as a string, or an object narrowing it to some
 * methods and path prefixes. `allowPrivate` lets a *name* that resolves to a loopback, link-local
 * or private address through; an IP literal entry is explicit on its own and needs no flag.
 */
export const HostGrantEntrySchema = z.union([
  z.string(),
  z.strictObject({
    host: z.string(),
    /** Upper-case method names; absent: any method. */
    methods: z.array(z.string()).optional(),
    /** Path prefixes (`/v1/` or `/v1`, which also matches `/v1/…`); absent: any path. */
    pathPrefixes: z.array(z.string()).optional(),
    allowPrivate: z.boolean().optional(),
  }),
]);
export type HostGrantEntry = z.infer<typeof HostGrantEntrySchema>;

/** Capabilities the host may hand to one tool call, already narrowed to what the task grants. */
export const CapabilityGrantSchema = z.strictObject({
  fs: z
    .strictObject({
      /** Absolute, real path of the task's workspace. */
      root: z.string(),
      read: z.boolean(),
      write: z.boolean(),
      list: z.boolean(),
      /**
       * Absolute path of the task tree's copy-on-write upper folder (recovery/workspace-overlay).
       * When present, writes land there only and reads fall through to `root`; when absent, the
       * tool works on `root` directly.
       */
      overlay: z.string().optional(),
      /** Real absolute paths of Warden's own folders (state, caches): never served, whatever the path. */
      protectedPaths: z.array(z.string()).optional(),
      /** Absolute paths of Warden's key files and credential stores: never opened, also not through a hard link. */
      protectedFiles: z.array(z.string()).optional(),
      /** The task's own controls (its task file, its policy pack folders): read, never written (also not through the overlay's commit). */
      readOnlyPaths: z.array(z.string()).optional(),
      /** `refuse`: no symbolic link is followed anywhere on a path (it was resolved when the policy decided). Default `follow-inside`. */
      symlinks: z.enum(['follow-inside', 'refuse']).optional(),
      /** With `overlay`: where this call keeps what its writes replaced in the upper folder, so they can be undone (a sub-agent's). */
      undo: z.string().optional(),
      /** With `overlay`: what the task tree's overlay may hold in all, bytes (`limits.workspaceMb`); a write past it is refused ERR_WORKSPACE_QUOTA. */
      workspaceBytes: z.number().int().positive().optional(),
    })
    .optional(),
  http: z
    .strictObject({
      /** `host` or `host:port` entries (optionally narrowed to methods and path prefixes); everything else is refused. */
      allowedHosts: z.array(HostGrantEntrySchema),
      /**
       * Hosts (WHATWG `URL.host`: canonical name, plus the port unless it is the scheme's default)
       * a redirect is followed to within this call: the host and port of the URL the policy judged. A redirect anywhere else is returned to the tool (status and
       * Location), not followed, so the next hop is a new call the policy judges. Absent: any
       * granted host.
       */
      followRedirectsTo: z.array(z.string()).optional(),
      /** Headers added to requests to a host (`host` / `host:port`) after the checks: the task's outbound secrets, resolved. */
      secrets: z.array(z.strictObject({ host: z.string(), headers: z.record(z.string(), z.string()) })).optional(),
      /** Values removed from every response before the tool sees it (the secrets above). */
      redact: z.array(z.string()).optional(),
    })
    .optional(),
  sql: z
    .strictObject({
      /** Database name -> absolute path of its SQLite file. */
      databases: z.record(z.string(), z.string()),
      /**
       * Databases granted table by table: database name -> table (lower-case) -> access. A
       * statement on such a database runs only if every table it touches (views, triggers and
       * cascades included) is granted; other databases are granted whole.
       */
      tables: z.record(z.string(), z.record(z.string(), z.enum(['read', 'write']))).optional(),
      query: z.boolean(),
      exec: z.boolean(),
      /**
       * Absolute path of the task tree's undo journal (an SQLite file, created on first use).
       * With it, `exec` keeps the before-image of every row it changes there and records the call
       * id in the target database in the same transaction as the change (exactly once).
       */
      journal: z.string().optional(),
      /** Idempotency key of this tool call; further `exec`s in the same call get `#2`, `#3`, … appended. */
      callId: z.string().min(1).max(200).optional(),
      /** `exec` runs the statement, measures `{ changes, table }` and rolls back. */
      dryRun: z.boolean().optional(),
      /** Warden's own folders: no database at or under them is opened (checked on the file SQLite opened). */
      protectedPaths: z.array(z.string()).optional(),
      /** Warden's key files and credential stores: never opened as a database, under any name. */
      protectedFiles: z.array(z.string()).optional(),
      /** The task's own controls: never opened for `exec`. */
      readOnlyPaths: z.array(z.string()).optional(),
    })
    .optional(),
});
export type CapabilityGrant = z.infer<typeof CapabilityGrantSchema>;

export const SandboxLimitsSchema = z.strictObject({
  timeoutMs: z.number().int().positive(),
  memoryMb: z.number().int().min(8),
  maxOutputBytes: z.number().int().positive(),
});
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

/**
 * What the host's policy gate needs to decide a tool call's capability calls (sandbox/policy-gate.ts):
 * the task's compiled rules (cached by `rulesKey`), its counters, the deciding agent and clock,
 * where the tool's arguments came from, and what a human already approved.
 */
export const PolicyGateSpecSchema = z.strictObject({
  /** SHA-256 (hex) of the compiled rules' JSON: the host keeps one engine per key. */
  rulesKey: z.string().min(1),
  /**
   * The compiled rules, sent only to a host not known to hold `rulesKey` (a task's rules are
   * about 12 KiB of JSON, serialised, sent and parsed twice per call otherwise). A host that does
   * not hold the key answers SANDBOX_RULES_UNKNOWN before checking the credential, and the
   * client sends the call again with the rules.
   */
  rules: z.array(CompiledRuleSchema).optional(),
  state: z.unknown(),
  agent: PolicyAgentSchema,
  now: z.iso.datetime({ offset: true }),
  seed: ProvenanceSeedSchema,
  caller: z.strictObject({
    /** The tool whose code makes the calls. */
    tool: z.string(),
    /** A built-in: its one capability call is the step itself (the step's approvals carry over to it). */
    builtin: z.boolean(),
    args: z.record(z.string(), z.unknown()),
    /** Argument pointer → where its value came from, as the step's policy check classified it. */
    argSources: z.record(z.string(), ValueSourceSchema),
  }),
  /** Rules a human approved for this step (before it ran). */
  approvedRules: z.array(z.string()).default([]),
  /** Digests of measured effects a human approved (policy-gate.ts `effectDigest`). */
  approvedEffects: z.array(z.string()).default([]),
  /** The monitor's egress watch: a user tool's request to a host it holds is stopped before it connects (monitoring/egress-watch.ts). */
  egressWatch: EgressWatchSchema.optional(),
});
export type PolicyGateSpec = z.infer<typeof PolicyGateSpecSchema>;

/**
 * The error code of a host's answer to a call whose policy names a `rulesKey` the host does not
 * hold and carries no rules. The client answers it by sending the call again with the rules;
 * it never reaches a caller of `SandboxClient.run`.
 */
export const SANDBOX_RULES_UNKNOWN = 'SANDBOX_RULES_UNKNOWN';

/** What the gate let through and what stopped the call. */
export const GateReportSchema = z.strictObject({
  applied: z.array(
    z.strictObject({
      request: PolicyRequestSchema,
      decision: z.enum(['allow', 'deny', 'approval']),
      /** Ids of the deny and approval rules that matched (an approval a human gave). */
      rules: z.array(z.string()),
      /** Shadow-mode rules that matched. */
      shadow: z.array(z.string()).optional(),
    }),
  ),
  stopped: z
    .strictObject({
      decision: z.enum(['deny', 'approval']),
      request: PolicyRequestSchema,
      matched: z.array(MatchedRuleSchema),
      digest: z.string(),
    })
    .optional(),
});
export type GateReport = z.infer<typeof GateReportSchema>;

export const SandboxRunRequestSchema = z.strictObject({
  type: z.literal('run'),
  id: z.string(),
  toolName: z.string(),
  /** Body of `async function (input, warden)`. */
  source: z.string(),
  input: z.unknown(),
  limits: SandboxLimitsSchema,
  capabilities: CapabilityGrantSchema,
  /** The call's credential (compact JWS); required when the host runs with a credential gate. */
  credential: z.string().max(16_384).optional(),
  /** Decide every capability call with the task's policy engine before it applies. */
  policy: PolicyGateSpecSchema.optional(),
  /**
   * The call's start record (recovery/call-starts.ts), for a tool undone by a compensating tool:
   * the host records `started` once it has accepted the call (credential checked, isolate leased),
   * right before the tool's code runs, so a call it refused never reads started; a call its
   * compensation already fenced off is refused ERR_TOOL_CANCELLED and does not run.
   */
  startRecord: z.strictObject({ file: z.string().min(1), callId: z.string().min(1) }).optional(),
});
export type SandboxRunRequest = z.infer<typeof SandboxRunRequestSchema>;

/**
 * Stops the call `id` the client sent this host (its activity was cancelled): the host disposes
 * of the call's isolate and aborts its capability requests in flight, then answers the call with
 * ERR_TOOL_CANCELLED. A call already answered, or unknown to the host, is left alone (no reply).
 */
export const SandboxCancelRequestSchema = z.strictObject({
  type: z.literal('cancel'),
  id: z.string(),
});
export type SandboxCancelRequest = z.infer<typeof SandboxCancelRequestSchema>;

/**
 * Asks the host's main thread whether it is alive, and how the call `id` stands (sandbox-client.ts
 * header, "liveness"). Sent only for a call that overran its deadline or its cancel grace, never
 * on the happy path; the host answers with SandboxAliveResponse at once, even while it boots its
 * SQL process or retires.
 */
export const SandboxPingRequestSchema = z.strictObject({
  type: z.literal('ping'),
  id: z.string(),
});
export type SandboxPingRequest = z.infer<typeof SandboxPingRequestSchema>;

/**
 * The host's answer to a ping: its main thread runs. `call`: `running` the call `id` is being
 * handled and its isolate was not told to stop; `stopping` it was told to stop (its timeout passed
 * or it was cancelled) `stoppingForMs` ago (host time, milliseconds) and has not ended; `absent`
 * the host holds no such call (answered already, or not yet taken up).
 */
export const SandboxAliveResponseSchema = z.strictObject({
  type: z.literal('alive'),
  id: z.string(),
  call: z.enum(['running', 'stopping', 'absent']),
  stoppingForMs: z.number().nonnegative().optional(),
});
export type SandboxAliveResponse = z.infer<typeof SandboxAliveResponseSchema>;

/**
 * The host tells the client, before a call's first use of each capability goes ahead, that the
 * call reached it (at most once per capability and call): if the host is then lost, the client
 * answers that call as one whose effects may have happened, never as one that did nothing.
 */
export const SandboxReachedNoticeSchema = z.strictObject({
  type: z.literal('reached'),
  id: z.string(),
  capability: z.enum(CAPABILITY_NAMES),
});
export type SandboxReachedNotice = z.infer<typeof SandboxReachedNoticeSchema>;

/**
 * The host tells the client that this call's isolate failed in a way V8 cannot contain
 * (isolated-vm's `onCatastrophicError`: a heap exhausted outside its limit's checks, or a script
 * that would not terminate): the client answers that call at once as its own failure, not run
 * again (it would end the replacement host too), and sends the host no more calls. The host
 * finishes the calls it is running in other isolates and then aborts (sandbox-host.ts,
 * `retireAfterCatastrophe`). `cause`: `out-of-memory` when V8 ran out of heap for the isolate
 * (the call is answered ERR_SANDBOX_MEMORY), `lost` for any other loss (ERR_SANDBOX_CRASHED).
 */
export const SandboxCrashedNoticeSchema = z.strictObject({
  type: z.literal('crashed'),
  id: z.string(),
  cause: z.enum(['out-of-memory', 'lost']),
});
export type SandboxCrashedNotice = z.infer<typeof SandboxCrashedNoticeSchema>;

/** What the host writes on its notice pipe (or, without one, sends on the IPC channel). */
export const SandboxNoticeSchema = z.discriminatedUnion('type', [SandboxReachedNoticeSchema, SandboxCrashedNoticeSchema]);
export type SandboxNotice = z.infer<typeof SandboxNoticeSchema>;

/**
 * The host's descriptor for reached notices: a pipe of their own, one JSON line each, which the
 * host writes synchronously (the notice is in the kernel, and outlives the host, before the use
 * goes ahead); the IPC channel only queues a message in the sender while the socket is full.
 */
export const SANDBOX_NOTICE_FD = 4;
/** Environment variable telling the host that SANDBOX_NOTICE_FD is its notice pipe. */
export const SANDBOX_NOTICE_FD_ENV = 'WARDEN_SANDBOX_NOTICE_FD';

/** Environment variable naming the state folder whose keys and stores the host verifies calls with. */
export const SANDBOX_IDENTITY_DIR_ENV = 'WARDEN_SANDBOX_IDENTITY_DIR';
/** The shared state database whose revocation and replay stores the host checks (PostgreSQL mode). */
export const SANDBOX_DATABASE_URL_ENV = 'WARDEN_SANDBOX_DATABASE_URL';
/** A public JWKS file the host verifies with instead of `<identity dir>/keys/jwks.json` (key-source mode). */
export const SANDBOX_JWKS_FILE_ENV = 'WARDEN_SANDBOX_JWKS_FILE';

/**
 * The fixed call a client sends to check that a new host can run isolates. It has no capabilities
 * and can only return "ready", so the credential gate lets exactly this call through.
 */
export const SANDBOX_PROBE_CALL = {
  toolName: 'warden.sandbox-probe',
  source: 'return "ready";',
  input: null,
  limits: { timeoutMs: 5000, memoryMb: 8, maxOutputBytes: 64 },
  capabilities: {},
} as const satisfies Omit<SandboxRunRequest, 'type' | 'id'>;

export const SandboxRunResponseSchema = z.discriminatedUnion('ok', [
  z.strictObject({
    type: z.literal('result'),
    id: z.string(),
    ok: z.literal(true),
    output: z.unknown(),
    durationMs: z.number(),
    policy: GateReportSchema.optional(),
    /** Strings of capability-call arguments the tool built with a lone surrogate, made well-formed at entry (U+FFFD). */
    capabilityArgsMended: z.number().int().positive().optional(),
  }),
  z.strictObject({
    type: z.literal('result'),
    id: z.string(),
    ok: z.literal(false),
    /**
     * `retryable`: set by the client for a call lost with its host before it reached any
     * capability (nothing of it happened): its activity may run it again, on the replacement host.
     */
    error: z.strictObject({ code: z.string(), message: z.string(), retryable: z.boolean().optional() }),
    durationMs: z.number(),
    policy: GateReportSchema.optional(),
    /** Strings of capability-call arguments the tool built with a lone surrogate, made well-formed at entry (U+FFFD). */
    capabilityArgsMended: z.number().int().positive().optional(),
  }),
]);
export type SandboxRunResponse = z.infer<typeof SandboxRunResponseSchema>;
