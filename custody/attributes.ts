/**
 * Span attribute names Warden's traces carry, and the ones that must never reach the custody
 * ledger. Where the OpenTelemetry GenAI semantic conventions define a name (`gen_ai.*`), it is
 * used as is; everything Warden adds lives under `warden.*`.
 *
 * Deliberately plain constants with no imports: workflow code may import this file.
 */

/** OpenTelemetry GenAI semantic-convention attributes Warden sets. */
export const GEN_AI_ATTR = {
  /** `chat` for a model call, `execute_tool` for a tool call, `invoke_agent` for a (sub-)agent. */
  operationName: 'gen_ai.operation.name',
  /** The model id asked for (e.g. `gpt-4o-mini`, `scripted-scribe`). */
  requestModel: 'gen_ai.request.model',
  /** The model id that answered, when the provider says. */
  responseModel: 'gen_ai.response.model',
  toolName: 'gen_ai.tool.name',
  /** The model's own id for the tool call. */
  toolCallId: 'gen_ai.tool.call.id',
  agentName: 'gen_ai.agent.name',
  agentId: 'gen_ai.agent.id',
  /** Who serves the model, as the client knows it (`openai`, `anthropic`, `warden.scripted`). */
  providerName: 'gen_ai.provider.name',
  /** The task's root workflow id: every model call of one task tree shares it. */
  conversationId: 'gen_ai.conversation.id',
  /** Tokens the provider billed for the prompt / the answer, when it reports usage. */
  usageInputTokens: 'gen_ai.usage.input_tokens',
  usageOutputTokens: 'gen_ai.usage.output_tokens',
  /** The provider's id of the completion. */
  responseId: 'gen_ai.response.id',
  /** Why the model stopped, one per choice (`stop`, `tool_calls`, ...). */
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  /** `function` for user-defined tools, `extension` for Warden's built-in ones. */
  toolType: 'gen_ai.tool.type',
  toolDescription: 'gen_ai.tool.description',
  /** `input` or `output`, on the token usage metric. */
  tokenType: 'gen_ai.token.type',
} as const;

/** General OpenTelemetry attributes Warden sets on GenAI spans and metrics. */
export const OTEL_ATTR = {
  /** Low-cardinality class of the error an operation ended with (Warden's `ERR_*` code). */
  errorType: 'error.type',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  /**
   * The resource's service name. Not imported from @opentelemetry/semantic-conventions: its index
   * is one table of every stable name, and loading it cost `warden run` ~50 ms (issue 17).
   */
  serviceName: 'service.name',
} as const;

/**
 * Attributes the Temporal interceptors put on spans (`@temporalio/interceptors-opentelemetry`),
 * plus the activity type, which Warden adds so a span renamed to GenAI terms still says which
 * activity it ran (the history cross-check matches on it).
 */
export const TEMPORAL_ATTR = {
  workflowId: 'temporalWorkflowId',
  runId: 'run_id',
  activityId: 'temporalActivityId',
  activityType: 'temporalActivityType',
} as const;

/** Values of `gen_ai.operation.name`. */
export const GEN_AI_OPERATION = {
  chat: 'chat',
  executeTool: 'execute_tool',
  invokeAgent: 'invoke_agent',
} as const;

/**
 * Operations of Warden's own that are not GenAI operations (`warden.operation.name`): a policy
 * check is not a tool execution, so it must not carry `gen_ai.operation.name` (tools that count
 * `execute_tool` spans would count every call twice).
 */
export const WARDEN_OPERATION = {
  checkPolicy: 'check_policy',
} as const;

/** Span names the GenAI conventions prescribe: `{operation} {model or tool or agent}`. */
export const genAiSpanName = {
  chat: (model: string): string => `${GEN_AI_OPERATION.chat} ${model}`,
  executeTool: (tool: string): string => `${GEN_AI_OPERATION.executeTool} ${tool}`,
  invokeAgent: (agent: string): string => `${GEN_AI_OPERATION.invokeAgent} ${agent}`,
  /** Warden's policy check of a proposed call, named like the GenAI spans: `check_policy fs.write`. */
  checkPolicy: (tool: string): string => `${WARDEN_OPERATION.checkPolicy} ${tool}`,
};

/** Warden's own attributes. Hashes are lower-case hex SHA-256 of the canonical JSON (or UTF-8 text). */
export const WARDEN_ATTR = {
  /** Root workflow id of the task: every span of a task carries it, sub-agents included. */
  taskId: 'warden.task.id',
  /** The human the agent acts for. */
  user: 'warden.user',
  /** The user's intent in full (only when configured to record it in clear). */
  intent: 'warden.intent',
  intentSha256: 'warden.intent.sha256',
  /** This agent's workflow id. */
  agentId: 'warden.agent.id',
  /** Delegation chain from the root agent down to this one (workflow ids), as a string array. */
  agentChain: 'warden.agent.chain',
  /** Model version (the id goes in `gen_ai.request.model`). */
  modelVersion: 'warden.model.version',
  /** Hash of the exact prompt context sent to the model. */
  promptSha256: 'warden.prompt.sha256',
  /** Hash of the tool's arguments (canonical JSON). */
  toolArgsSha256: 'warden.tool.args.sha256',
  /** The tool's executor kind (`builtin`, `isolate`, `process`, `mcp`), from its descriptor. */
  toolExecutor: 'warden.tool.executor',
  /** The tool's effect families (`payment`, `messaging`, `network`, `storage`, `code-execution`), as a string array. */
  toolFamilies: 'warden.tool.families',
  /** The tool's resolved MCP hints, as a string array of the true ones (`readOnlyHint`, `destructiveHint`, ...). */
  toolHints: 'warden.tool.hints',
  /** False when the tool declared no effects and is treated as doing anything (fail closed). */
  toolDeclared: 'warden.tool.declared',
  /** Whether a call of the tool can be undone (its descriptor's compensation). */
  toolUndoable: 'warden.tool.undoable',
  /** The `jti` of the credential a tool call used. Never the token itself. */
  credentialJti: 'warden.credential.jti',
  /** The tool (or `spawn:<sub-agent>`) a policy check decided on. */
  policyTool: 'warden.policy.tool',
  /** `allow`, `deny` or `approval`. */
  policyDecision: 'warden.policy.decision',
  /** Ids of the policy rules that matched, as a string array. */
  policyRules: 'warden.policy.rules',
  /** Rules in shadow mode that matched (recorded, not enforced), as a string array. */
  policyShadow: 'warden.policy.shadow',
  /** True on a `check_policy` span made ahead by the activity that brought the action (policies/policy-precheck.ts); the workflow used it only when its own inputs digest the same. */
  policyAhead: 'warden.policy.ahead',
  resourcesFiles: 'warden.resources.files',
  resourcesHosts: 'warden.resources.hosts',
  resourcesTables: 'warden.resources.tables',
  /** An approval request's id, and how it was decided (`approved`, `denied`). */
  approvalRequestId: 'warden.approval.request_id',
  approvalDecision: 'warden.approval.decision',
  /** The registered approver whose key signed the decision, and that key's id. */
  approvalApprover: 'warden.approval.approver',
  approvalApproverKey: 'warden.approval.approver_key',
  /** `ok`, `denied`, `failed`, or a task status at the end of a task. */
  outcome: 'warden.outcome',
  /** Warden's own operation (`check_policy`), for spans that are not GenAI operations. */
  operationName: 'warden.operation.name',
  /** Nesting depth of the agent: 0 for the task the user started. */
  agentDepth: 'warden.agent.depth',
  /** The monitor's anomaly score of the action (0-100), on its tool call and on a response. */
  monitorScore: 'warden.monitor.score',
  /** Why, one `<signal>: <detail>` string each, as a string array. */
  monitorReasons: 'warden.monitor.reasons',
  /** What the monitor did: `alert`, `step-up`, `block`, `remediate`. */
  monitorResponse: 'warden.monitor.response',
  /** Ids of the response rules that fired, as a string array. */
  monitorRules: 'warden.monitor.rules',
  monitorAlertId: 'warden.monitor.alert.id',
  /** Milliseconds from detection (or the kill) to the task's credentials no longer verifying. */
  monitorDetectionToBlockMs: 'warden.monitor.detection_to_block_ms',
  /** Who killed the task (`warden kill`). */
  monitorOperator: 'warden.monitor.operator',
  /** MCP servers whose tool lists a task pinned, as a string array. */
  mcpServers: 'warden.mcp.servers',
  /** The pins: `<server>:<sha256 of the canonical tool list>`, as a string array. */
  mcpPins: 'warden.mcp.pins',
  /** Every pinned MCP tool (`<server>.<tool>`), as a string array. */
  mcpTools: 'warden.mcp.tools',
  /** On an MCP tool call: the pin its server's list was checked against. */
  mcpPin: 'warden.mcp.pin',
  /**
   * On an MCP tool call cancelled, or ended otherwise without its answer (timed out): how it was stopped (mcp/mcp-connection.ts `McpCancelOutcome`):
   * `not-sent`, `answered`, `server-killed` (a stdio server's process tree), or `session-closed`
   * (an HTTP server's session ended: the tool may still run on that server, beyond Warden's reach).
   */
  mcpCancel: 'warden.mcp.cancel',
  /** On a `proc.run` call: the program and its exit status. */
  processCommand: 'warden.process.command',
  processExitCode: 'warden.process.exit_code',
  /** On a tool call that did not complete: the overlay paths it wrote that Warden took back out (string array). */
  overlayUndone: 'warden.overlay.undone',
  /** The model turn (0-based) a model call answered. */
  turn: 'warden.turn',
  /** Hash of a tool's output (canonical JSON): the digest a claim check in history names too. */
  toolOutputSha256: 'warden.tool.output.sha256',
  /**
   * How many strings (values and keys) of the model's turn, the tool's arguments or its output held
   * a lone surrogate and were made well-formed (U+FFFD) where they entered Warden
   * (custody/well-formed-json.ts); absent when none. The digests are of the mended values.
   */
  modelTurnMended: 'warden.model.turn.mended',
  toolArgsMended: 'warden.tool.args.mended',
  toolOutputMended: 'warden.tool.output.mended',
  /** Strings of the capability calls a sandboxed tool made that held a lone surrogate, made well-formed at entry. */
  toolCapabilityArgsMended: 'warden.tool.capability_args.mended',
} as const;

/** Name of the span event a response adds to its span (with the alert's id, response and score). */
export const MONITOR_ALERT_EVENT = 'warden.monitor.alert';

/**
 * Attribute keys dropped before a span is recorded, whatever their value: bearer material has
 * no place in a ledger that is kept forever and shown to auditors.
 */
export const DENIED_ATTRIBUTE_KEYS: readonly string[] = [
  'warden.credential.token',
  'warden.credential.secret',
  'http.request.header.authorization',
  'http.request.header.cookie',
  'http.response.header.set-cookie',
];

/** Keys whose last segment names a secret are dropped too (`*.token`, `*.password`, `*.api_key`, ...). */
export const DENIED_ATTRIBUTE_KEY_PATTERN = /(^|[._-])(token|secret|password|passwd|api[_-]?key|authorization|cookie|private[_-]?key)$/i;

export function isDeniedAttributeKey(key: string, denied: readonly string[] = DENIED_ATTRIBUTE_KEYS): boolean {
  return denied.includes(key) || DENIED_ATTRIBUTE_KEY_PATTERN.test(key);
}
