/**
 * The request id of an action the monitor holds for approval (a step-up), made from a key the
 * run's `beginMonitoring` drew (node:crypto, recorded in history as the local activity's result)
 * and the step's index: unguessable without the run's history, one per step, and the same on
 * every replay.
 *
 * Why not `uuid4()` from `@temporalio/workflow`: it draws from the workflow sandbox's seeded
 * `Math.random`, which is shared. The OpenTelemetry workflow interceptors draw span ids from it,
 * and draw one for every Update validator, which runs when an Update arrives and never on replay.
 * A run that accepted an approval (or a kill, or a session call) before a step-up hold, replayed
 * after a worker restart, drew a different id for that hold than the one the approver was
 * answering: the replay failed ("Update machine does not handle this event") and the task stuck.
 * So nothing a workflow decides or shows may come from that stream.
 *
 * Pure (sha256 from @noble/hashes): runs inside workflow code.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/**
 * @param holdKey the run's key (`MonitorSetup.holdKey`: 32 random bytes, base64url)
 * @param runId the workflow run's id (a key is drawn per run; this binds the id to the run too)
 * @param stepIndex the held step's index (the monitor holds a step at most once)
 * @returns `m-` and 32 hex digits (128 bits of SHA-256 over the three, FIPS 180-4)
 */
export function holdRequestId(holdKey: string, runId: string, stepIndex: number): string {
  if (holdKey.length === 0) throw new TypeError('holdRequestId: an empty hold key');
  return `m-${bytesToHex(sha256(utf8ToBytes(`warden-monitor-hold\n${holdKey}\n${runId}\n${stepIndex}`))).slice(0, 32)}`;
}
