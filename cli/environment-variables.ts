/**
 * The environment variables `warden` reads that a user sets, one line each, as `warden --help`
 * and `warden server --help` print them (README, "Using an existing Temporal cluster", has the
 * full table). test/cli/help-environment.test.ts keeps this list and the README's in step, and
 * fails on a variable the runtime reads that is in neither this list nor its list of variables
 * Warden sets for its own child processes.
 */

export interface EnvironmentVariable {
  name: string;
  /** One line: what it sets, and its default. */
  what: string;
  /** Also printed by `warden server --help` (it sets where and how the embedded server runs). */
  server?: true;
}

export const ENVIRONMENT_VARIABLES: readonly EnvironmentVariable[] = [
  { name: 'TEMPORAL_ADDRESS', what: 'host:port of a Temporal cluster; when set, no embedded server is started', server: true },
  { name: 'TEMPORAL_NAMESPACE', what: 'Temporal namespace (default "default")' },
  { name: 'TEMPORAL_TLS', what: '1 to reach the cluster over TLS (implied by the three below)' },
  { name: 'TEMPORAL_TLS_CA', what: "PEM file of the CA that signed the cluster's certificate" },
  { name: 'TEMPORAL_TLS_CERT', what: 'client certificate (PEM file) for mTLS' },
  { name: 'TEMPORAL_TLS_KEY', what: 'client key (PEM file) for mTLS' },
  { name: 'TEMPORAL_TLS_SERVER_NAME', what: 'server name to verify, when it differs from the address' },
  { name: 'TEMPORAL_CLI_PATH', what: 'the temporal CLI the embedded server runs (default: temporal on PATH, else one built into the cache)', server: true },
  { name: 'WARDEN_TEMPORAL_PORT', what: "the embedded server's gRPC port (default 7233)", server: true },
  { name: 'WARDEN_TEMPORAL_UI_PORT', what: "the embedded server's web UI port (default 8233; with another gRPC port, that port + 1000)", server: true },
  { name: 'WARDEN_TEMPORAL_HTTP_PORT', what: "the embedded server's HTTP API port (default 7243; with another gRPC port, that port + 1)", server: true },
  { name: 'WARDEN_STATE_DIR', what: 'state folder (default ./.warden): keys, ledgers, and the embedded server it started', server: true },
  { name: 'WARDEN_CACHE_DIR', what: 'caches: the built Temporal CLI, MCP packages, compiled code (default $XDG_CACHE_HOME/warden when XDG_CACHE_HOME is an absolute path, else ~/.cache/warden)', server: true },
  { name: 'WARDEN_TASK_QUEUE', what: 'task queue of run, worker and mcp serve without --task-queue (default warden-agent-tasks)' },
  { name: 'WARDEN_WORKER_ID', what: "this worker's name in shared tables (default: host name + a digest of the state folder)" },
  { name: 'WARDEN_DATABASE_URL', what: 'PostgreSQL URL that workers share state through (default: SQLite in the state folder)' },
  { name: 'WARDEN_SHARED_DIR', what: 'without WARDEN_DATABASE_URL: the folder every worker shares (default: the state folder)' },
  { name: 'WARDEN_SIGNING_KEY_FILE', what: 'one private JWK every worker signs credentials with, instead of a key per worker' },
  { name: 'WARDEN_CUSTODY_WITNESS', what: 'file or folder (…/) where each signed tree head of the custody ledger is published' },
  { name: 'WARDEN_CUSTODY_TRUSTED_KEYS', what: 'workers\' custody keys (JWKS files or folders, a path list) `warden audit verify` trusts' },
  { name: 'WARDEN_PROTECTED_HOSTS', what: 'more host:port no task may grant (TEMPORAL_ADDRESS always is)' },
  { name: 'WARDEN_SECRET_FILE_DIRS', what: '${file:…} secrets must lie in these folders (:-separated; default: any but Warden\'s own)' },
  { name: 'WARDEN_APPROVER_DIR', what: 'where `warden approvers add` writes key files (default ~/.config/warden/approvers)' },
  { name: 'WARDEN_APPROVER_KEY', what: 'the key file `warden approve|deny` signs with' },
  { name: 'WARDEN_APPROVER', what: 'the approver whose key file in WARDEN_APPROVER_DIR signs' },
  { name: 'WARDEN_ALERT_WEBHOOK', what: 'URL workers POST monitor alerts to' },
  { name: 'WARDEN_ALERT_WEBHOOK_SECRET', what: 'the secret alerts are signed with (Standard Webhooks)' },
  { name: 'WARDEN_APPROVAL_WEBHOOK', what: 'URL workers POST a notice to when an action is held for approval' },
  { name: 'WARDEN_APPROVAL_WEBHOOK_SECRET', what: 'the secret approval notices are signed with (Standard Webhooks)' },
  { name: 'WARDEN_DATABASE_POOL_MAX', what: 'most PostgreSQL connections one process opens (default 10)' },
  { name: 'WARDEN_DB_AUTO_MIGRATE', what: '1 lets a worker apply pending PostgreSQL migrations (default: refuse to start)' },
  { name: 'WARDEN_ENV_DENY', what: "more variables no task's tools may read (comma-separated, PREFIX_* for a prefix)" },
  { name: 'WARDEN_MCP_PACKAGES', what: 'where `warden mcp install` puts MCP server packages (default <WARDEN_CACHE_DIR>/mcp-packages)' },
  { name: 'WARDEN_TELEMETRY', what: '0 turns tracing and the custody ledger off' },
  { name: 'WARDEN_CODE_CACHE', what: "off (or 0): compile Warden's modules from source and resolve their requires anew each time (default: V8's cached data and the kept resolutions, in the cache folder)" },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', what: "OTLP collector for traces and metrics (OpenTelemetry's other OTEL_* variables apply)" },
  { name: 'WARDEN_TIMING', what: '1 prints when each start-up phase ended (stderr)' },
  { name: 'WARDEN_WORKFLOW_STACK_TRACES', what: "on gives workflow threads stack traces (default off; for debugging Warden's workflows)" },
];

/** `Environment:` and one indented line per variable (only the server's with `server`). */
export function environmentHelp(options: { server?: boolean } = {}): string[] {
  const shown = ENVIRONMENT_VARIABLES.filter((v) => options.server !== true || v.server === true);
  const width = Math.max(...shown.map((v) => v.name.length)) + 2;
  return ['Environment:', ...shown.map((v) => `  ${v.name.padEnd(width)}${v.what}`)];
}
