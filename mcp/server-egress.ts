/**
 * What a stdio MCP server does on the network, call by call. The server is one long-lived
 * process in the OS sandbox behind the egress proxy; each `tools/call` brings the monitor's
 * egress watch of its step (monitoring/egress-watch.ts), and every request the server makes while
 * calls are in flight is attributed to each of them and judged by their watches (the strictest
 * wins). A request made while no call is in flight cannot be scored against any step: it is held
 * when its host is one the last watch did not know.
 */
import { egressHoldReason, type EgressWatch } from '../monitoring/egress-watch';
import type { EgressDecision, EgressGate } from '../sandbox/os/egress-proxy';

interface CallInFlight {
  watch?: EgressWatch;
  decisions: EgressDecision[];
}

/** Most requests attributed to one call (later ones still counted by the proxy, not reported). */
const MAX_DECISIONS_PER_CALL = 1000;

export class ServerEgress {
  readonly #calls = new Set<CallInFlight>();
  #lastWatch: EgressWatch | undefined;

  /** What the server's egress proxy asks before each granted connection. */
  readonly gate: EgressGate = ({ host, method }) => {
    if (this.#calls.size === 0) {
      const last = this.#lastWatch;
      if (last === undefined || last.knownHosts.includes(host.toLowerCase())) return undefined;
      return { heldBy: 'monitor', reason: `held by the monitor: ${host} is a host agent ${last.agent} never reached, contacted while no tool call was in flight` };
    }
    for (const call of this.#calls) {
      const reason = egressHoldReason(call.watch, host, method);
      if (reason !== undefined) return { heldBy: 'monitor', reason };
    }
    return undefined;
  };

  /** Told of each decision of the server's egress proxy. */
  readonly record = (decision: EgressDecision): void => {
    for (const call of this.#calls) if (call.decisions.length < MAX_DECISIONS_PER_CALL) call.decisions.push(decision);
  };

  /** Runs `call` as a tools/call in flight under `watch`; returns its result and the requests made meanwhile. */
  async during<T>(watch: EgressWatch | undefined, call: () => Promise<T>): Promise<{ result: T; egress: EgressDecision[] }> {
    const entry: CallInFlight = { ...(watch === undefined ? {} : { watch }), decisions: [] };
    if (watch !== undefined) this.#lastWatch = watch;
    this.#calls.add(entry);
    try {
      return { result: await call(), egress: entry.decisions };
    } finally {
      this.#calls.delete(entry);
    }
  }
}
