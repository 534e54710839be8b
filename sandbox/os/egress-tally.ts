/**
 * What one call did through the egress proxy, per destination: every distinct destination (host,
 * method class, decision) is kept with its request count and bytes, however many requests the
 * call made, so a request to a new host cannot be pushed out by padding requests to a usual one
 * (a window of the last N requests could be). Only repeated detail is folded (the count and the
 * bytes of a destination's requests).
 *
 * Invariant: fail closed. At most `max` destinations are kept; a request that would be a new
 * destination beyond that is not admitted (the proxy holds it before it connects, `admits`) and
 * is counted as `overflow`, reported as a destination of its own (`OVERFLOW_HOST`) that no
 * baseline knows, so the monitor scores it as a new host written to.
 */
import { isNetworkWrite } from '../../monitoring/egress-watch';
import type { EgressDecision } from './egress-proxy';

/** Most distinct destinations kept for one call (egress-effects.ts reports all of them). */
export const MAX_EGRESS_DESTINATIONS = 256;

/** The host destinations beyond the cap are reported under (RFC 2606 `.invalid`: no real host has it). */
export const OVERFLOW_HOST = 'more-destinations.invalid';

/** A destination's method class: `read` (GET, HEAD, OPTIONS without a body), `write`, `tunnel` (CONNECT). */
export type MethodClass = 'read' | 'write' | 'tunnel';

export function methodClassOf(method: string, sendsBody = false): MethodClass {
  const upper = method.toUpperCase();
  if (upper === 'CONNECT') return 'tunnel';
  return isNetworkWrite(upper, sendsBody) ? 'write' : 'read';
}

function destinationOf(host: string, cls: MethodClass): string {
  return `${host.toLowerCase()} ${cls}`;
}

export class EgressTally {
  /** Destinations (host and method class) seen. */
  readonly #destinations = new Set<string>();
  /** Per destination and decision: the first request's fields, `requests` and `bytesOut` summed. */
  readonly #groups = new Map<string, EgressDecision>();
  /** A live request's group (its bytes grow while it streams). */
  readonly #groupOf = new WeakMap<EgressDecision, EgressDecision>();
  #overflow = 0;

  constructor(readonly max = MAX_EGRESS_DESTINATIONS) {}

  /** Whether a request to `host` with `method` fits: a destination already kept, or room for a new one. */
  admits(host: string, method: string, sendsBody = false): boolean {
    return this.#destinations.size < this.max || this.#destinations.has(destinationOf(host, methodClassOf(method, sendsBody)));
  }

  /** Counts one request (its `bytesOut` so far); beyond the cap, a new destination is counted as overflow. */
  add(decision: EgressDecision): void {
    const cls = methodClassOf(decision.method, decision.sendsBody === true);
    const destination = destinationOf(decision.host ?? decision.target, cls);
    if (!this.#destinations.has(destination)) {
      if (this.#destinations.size >= this.max) {
        this.#overflow += decision.requests ?? 1;
        return;
      }
      this.#destinations.add(destination);
    }
    const key = `${destination} ${decision.allowed ? 'allow' : 'deny'} ${decision.heldBy ?? ''}`;
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = { ...decision, requests: 0, bytesOut: 0 };
      this.#groups.set(key, group);
    }
    group.requests = (group.requests ?? 0) + (decision.requests ?? 1);
    group.bytesOut = (group.bytesOut ?? 0) + (decision.bytesOut ?? 0);
    if (decision.sendsBody === true) group.sendsBody = true;
    this.#groupOf.set(decision, group);
  }

  /** `bytes` more were sent by a request counted before. */
  grow(decision: EgressDecision, bytes: number): void {
    const group = this.#groupOf.get(decision);
    if (group !== undefined) group.bytesOut = (group.bytesOut ?? 0) + bytes;
  }

  /** Requests refused because the cap was reached. */
  get overflow(): number {
    return this.#overflow;
  }

  /** One decision per destination (`requests`, `bytesOut` summed), then the overflow as a refused tunnel to OVERFLOW_HOST. */
  get decisions(): EgressDecision[] {
    const out = [...this.#groups.values()].map((g) => ({ ...g }));
    if (this.#overflow > 0) {
      out.push({
        method: 'CONNECT',
        target: OVERFLOW_HOST,
        allowed: false,
        host: OVERFLOW_HOST,
        heldBy: 'monitor',
        requests: this.#overflow,
        error: { code: 'ERR_NETWORK_DENIED', message: `held: the call reached more than ${this.max} destinations` },
      });
    }
    return out;
  }
}
