/**
 * The monitor's egress watch: what every way out of a tool call asks before it connects (the OS
 * sandbox's egress proxy, for programs and stdio MCP servers; the policy gate of a user tool's
 * http capability). The workflow derives it for each step from the agent's baseline and the
 * task's response rules (workflows/monitor-step.ts), so a host the agent never reached, whose
 * contact the rules would answer with step-up, block or remediate, is refused before anything
 * connects: what the call meant to send never reaches it. Everything the call did reach is
 * measured there and scored after the call, as a plain `http.fetch` is scored before it.
 *
 * Deterministic and free of Node imports: workflow code uses it.
 */
import { z } from 'zod';

export const EgressWatchSchema = z.strictObject({
  /** `host[:port]` (WHATWG `host`, lower-case, the scheme's default port left out) the monitor does not score as new. */
  knownHosts: z.array(z.string()),
  /** Which contacts of any other host are held: `all`, `writes` (a method other than GET, HEAD, OPTIONS; every opaque tunnel), or `none`. */
  hold: z.enum(['none', 'writes', 'all']),
  /** The agent whose baseline it is (for the refusal's message). */
  agent: z.string(),
});
export type EgressWatch = z.infer<typeof EgressWatchSchema>;

/** The rule id a held contact is reported under (step effects, the policy gate's report). */
export const EGRESS_HOLD_RULE = 'monitor:new-host';

/**
 * Whether a request with `method` may carry data to its host. An HTTPS tunnel (`CONNECT`) is
 * opaque: Warden cannot see what goes through it, so it counts as a write.
 */
export function isNetworkWrite(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
}

/** Why `watch` holds a contact of `host` with `method`, or undefined when it lets it through. */
export function egressHoldReason(watch: EgressWatch | undefined, host: string, method: string): string | undefined {
  if (watch === undefined || watch.hold === 'none') return undefined;
  const key = host.toLowerCase();
  if (watch.knownHosts.includes(key)) return undefined;
  const write = isNetworkWrite(method);
  if (watch.hold === 'writes' && !write) return undefined;
  return `held by the monitor: ${key} is a host agent ${watch.agent} never reached, and the task's response rules answer ${write ? 'sending data to' : 'contacting'} a new host (${method.toUpperCase()})`;
}
