/**
 * What a sandboxed program (or stdio MCP server) did on the network, in the vocabulary every
 * other request of a step is recorded in: `http.fetch` step effects with `urls` and `bytes`
 * (tools/call-effects.ts), so the monitor scores and the baselines learn a program's requests
 * exactly like a built-in's or a user tool's (monitoring/action-features.ts `networkEffectsOf`).
 *
 * Invariant: only the origin of a request is kept (scheme, host, port), never its path, query or
 * body: a program may put anything it read into a URL, and these effects go into the workflow
 * history. Requests are grouped by origin, method and decision, with their count and bytes.
 */
import { EGRESS_HOLD_RULE } from '../../monitoring/egress-watch';
import type { StepEffect } from '../../task/task-run';
import type { EgressDecision } from './egress-proxy';

/** Most distinct destinations reported for one call (allowed ones first, then held, then refused). */
export const MAX_EGRESS_EFFECTS = 64;

interface Group {
  origin: string;
  hostname: string;
  method: string;
  decision: 'allow' | 'deny';
  heldBy?: string;
  requests: number;
  bytes: number;
}

/** The proxy's decisions as step effects: one per origin, method and decision, at most MAX_EGRESS_EFFECTS. */
export function egressEffectsOf(decisions: readonly EgressDecision[]): StepEffect[] {
  const groups = new Map<string, Group>();
  for (const d of decisions) {
    if (d.host === undefined) continue;
    const method = d.method.toUpperCase();
    let url: URL;
    try {
      url = new URL(`${method === 'CONNECT' ? 'https' : 'http'}://${d.host}`);
    } catch {
      continue;
    }
    const decision = d.allowed ? 'allow' : 'deny';
    const key = `${url.origin} ${method} ${decision} ${d.heldBy ?? ''}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { origin: url.origin, hostname: url.hostname.replace(/^\[|\]$/g, ''), method, decision, ...(d.heldBy === undefined ? {} : { heldBy: d.heldBy }), requests: 0, bytes: 0 };
      groups.set(key, group);
    }
    group.requests += 1;
    group.bytes += d.bytesOut ?? 0;
  }
  const rank = (g: Group) => (g.decision === 'allow' ? 0 : g.heldBy !== undefined ? 1 : 2);
  return [...groups.values()]
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, MAX_EGRESS_EFFECTS)
    .map((g) => ({
      tool: 'http.fetch',
      effect: { urls: [{ url: g.origin, host: g.hostname, method: g.method }], bytes: g.bytes, requests: g.requests, via: 'egress-proxy' },
      decision: g.decision,
      rules: g.heldBy === 'monitor' ? [EGRESS_HOLD_RULE] : [],
    }));
}
