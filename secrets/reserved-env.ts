/**
 * Worker environment variables a task file may never name (in `tools.mcp.<server>.env`,
 * `bearerTokenEnv`, a model's `apiKeyEnv`, or `${env:NAME}` in `resources.secrets`): Warden's own
 * configuration and credentials (`WARDEN_*`: the state database URL, signing keys...; `TEMPORAL_*`:
 * the cluster's address and TLS keys), and the worker's deny list. Without this, a task file could
 * send the worker's own secrets to a server or URL of its choosing.
 *
 * The prefixes are refused when the task file is read (a clear error naming the field); the deny
 * list is the worker's (`WARDEN_ENV_DENY`, comma-separated names, `PREFIX*` for a prefix) and is
 * checked where the variable is read. Names are compared case-insensitively.
 */

/** Prefixes of Warden's own variables. */
export const RESERVED_ENV_PREFIXES = ['WARDEN_', 'TEMPORAL_'] as const;

/** The worker's variable holding more names tasks may not read: `NAME,OTHER,PREFIX_*`. */
export const ENV_DENY_VARIABLE = 'WARDEN_ENV_DENY';

/** Why `name` is one of Warden's own variables, or undefined. */
export function reservedEnvReason(name: string): string | undefined {
  const upper = name.toUpperCase();
  const prefix = RESERVED_ENV_PREFIXES.find((p) => upper.startsWith(p));
  return prefix === undefined ? undefined : `${name} is one of Warden's own variables (${prefix}*), which a task cannot read`;
}

/**
 * Why the worker refuses to hand `name` to a task: a reserved prefix, or an entry of
 * `env.WARDEN_ENV_DENY`. Undefined when the task may read it.
 */
export function deniedEnvReason(name: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const reserved = reservedEnvReason(name);
  if (reserved !== undefined) return reserved;
  const upper = name.toUpperCase();
  for (const raw of (env[ENV_DENY_VARIABLE] ?? '').split(',')) {
    const entry = raw.trim().toUpperCase();
    if (entry === '') continue;
    if (entry.endsWith('*') ? upper.startsWith(entry.slice(0, -1)) : upper === entry) return `${name} is on this worker's deny list (${ENV_DENY_VARIABLE}), which a task cannot read`;
  }
  return undefined;
}
