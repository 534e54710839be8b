/**
 * What a sandboxed program (or stdio MCP server) did on the network, in the vocabulary every
 * other request of a step is recorded in: `http.fetch` step effects with `urls` and `bytes`
 * (tools/call-effects.ts), so the monitor scores and the baselines learn a program's requests
 * exactly like a built-in's or a user tool's (monitoring/action-features.ts `networkEffectsOf`).
 *
 * Invariant: only the origin of a request is kept (scheme, host, port), never its path, query or
 * body: a program may put anything it read into a URL, and these effects go into the workflow
 * history. Requests are grouped by origin, method and decision, with their count and bytes.
 * Every destination is reported: the proxy's tally (egress-tally.ts) bounds how many there are
 * (past its cap new destinations are held and reported as one overflow destination).
 */
import { EGRESS_HOLD_RULE } from '../../monitoring/egress-watch';
import type { StepEffect } from '../../task/task-run';
import type { EgressDecision } from './egress-proxy';

interface Group {
  origin: string;
  hostname: string;
  method: string;
  /** A request of the group sent a body (a write whatever its method). */
  write: boolean;
  decision: 'allow' | 'deny';
  heldBy?: string;
  requests: number;
  bytes: number;
}

/** The proxy's decisions as step effects: one per origin, method and decision (allowed ones first, then held, then refused), none dropped. */
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
    const write = d.sendsBody === true && method !== 'CONNECT';
    const key = `${url.origin} ${method} ${write} ${decision} ${d.heldBy ?? ''}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { origin: url.origin, hostname: url.hostname.replace(/^\[|\]$/g, ''), method, write, decision, ...(d.heldBy === undefined ? {} : { heldBy: d.heldBy }), requests: 0, bytes: 0 };
      groups.set(key, group);
    }
    group.requests += d.requests ?? 1;
    group.bytes += d.bytesOut ?? 0;
  }
  const rank = (g: Group) => (g.decision === 'allow' ? 0 : g.heldBy !== undefined ? 1 : 2);
  return [...groups.values()]
    .sort((a, b) => rank(a) - rank(b))
    .map((g) => ({
      tool: 'http.fetch',
      effect: { urls: [{ url: g.origin, host: g.hostname, method: g.method, ...(g.write ? { write: true } : {}) }], bytes: g.bytes, requests: g.requests, via: 'egress-proxy' },
      decision: g.decision,
      rules: g.heldBy === 'monitor' ? [EGRESS_HOLD_RULE] : [],
    }));
}
