/**
 * What a stdio MCP server does on the network, call by call. The server is one long-lived
 * process in the OS sandbox behind the egress proxy; each `tools/call` brings the monitor's
 * egress watch of its step (monitoring/egress-watch.ts), and every request the server makes while
 * calls are in flight is attributed to each of them and judged by their watches (the strictest
 * wins). A request made while no call is in flight cannot be scored against the step that caused
 * it: it is held when its host is one the session's watch (the last call's, or the one the
 * connection was opened with) did not know, and it is reported with the next call that ends, so
 * it is scored against the task.
 *
 * Requests are tallied per destination (sandbox/os/egress-tally.ts): none is dropped, however
 * many a call makes; past the cap a new destination is held.
 */
import { egressHoldReason, type EgressWatch } from '../monitoring/egress-watch';
import type { EgressDecision, EgressGate } from '../sandbox/os/egress-proxy';
import { EgressTally } from '../sandbox/os/egress-tally';

interface CallInFlight {
  watch?: EgressWatch;
  tally: EgressTally;
}

export class ServerEgress {
  readonly #calls = new Set<CallInFlight>();
  #lastWatch: EgressWatch | undefined;
  /** Requests made while no call was in flight, reported with the next call that ends. */
  #between = new EgressTally();

  /** @param sessionWatch the watch requests are judged by before the first call (the session's baseline) */
  constructor(sessionWatch?: EgressWatch) {
    this.#lastWatch = sessionWatch;
  }

  /** What the server's egress proxy asks before each granted connection. */
  readonly gate: EgressGate = ({ host, method, sendsBody }) => {
    const full = { heldBy: 'monitor', reason: `held: the server reached too many destinations during one call, so a new one cannot be scored` };
    if (this.#calls.size === 0) {
      const last = this.#lastWatch;
      if (!this.#between.admits(host, method, sendsBody === true)) return full;
      if (last === undefined || last.knownHosts.includes(host.toLowerCase())) return undefined;
      return { heldBy: 'monitor', reason: `held by the monitor: ${host} is a host agent ${last.agent} never reached, contacted while no tool call was in flight` };
    }
    for (const call of this.#calls) {
      const reason = egressHoldReason(call.watch, host, method, sendsBody === true);
      if (reason !== undefined) return { heldBy: 'monitor', reason };
      if (!call.tally.admits(host, method, sendsBody === true)) return full;
    }
    return undefined;
  };

  /** Told of each decision of the server's egress proxy. */
  readonly record = (decision: EgressDecision): void => {
    if (this.#calls.size === 0) this.#between.add(decision);
    for (const call of this.#calls) call.tally.add(decision);
  };

  /** Told of the bytes a request sent after its decision. */
  readonly grow = (decision: EgressDecision, bytes: number): void => {
    this.#between.grow(decision, bytes);
    for (const call of this.#calls) call.tally.grow(decision, bytes);
  };

  /**
   * Runs `call` as a tools/call in flight under `watch`; returns its result and the requests made
   * meanwhile (and those made while no call was in flight before it ended). `report` is told of the
   * same requests however the call ends: a call that fails (times out, is cancelled) after its
   * server's requests still has them counted (activities/call-outcome.ts).
   */
  async during<T>(watch: EgressWatch | undefined, call: () => Promise<T>, report?: (egress: EgressDecision[]) => void): Promise<{ result: T; egress: EgressDecision[] }> {
    const entry: CallInFlight = { ...(watch === undefined ? {} : { watch }), tally: new EgressTally() };
    if (watch !== undefined) this.#lastWatch = watch;
    this.#calls.add(entry);
    const ended = (): EgressDecision[] => {
      const between = this.#between.decisions;
      this.#between = new EgressTally();
      const egress = [...between, ...entry.tally.decisions];
      report?.(egress);
      return egress;
    };
    try {
      let result: T;
      try {
        result = await call();
      } catch (error) {
        ended();
        throw error;
      }
      return { result, egress: ended() };
    } finally {
      this.#calls.delete(entry);
    }
  }
}
