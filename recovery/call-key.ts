/**
 * The idempotency key of one tool call: which run made it, at which step, and what the call is.
 * A retried activity of the same call finds its earlier effects under the same key (exactly
 * once); a different run under a reused workflow id, or a different call at the same step (a
 * reset, a changed history), gets a key of its own and runs its own statements.
 *
 * Pure (sha256 from @noble/hashes, no Node APIs): the workflow computes the key, so the tool call
 * and its compensation are keyed identically.
 */
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

export interface ToolCallIdentity {
  workflowId: string;
  runId: string;
  stepIndex: number;
  tool: string;
  args: unknown;
}

/** JSON with object members sorted by name, so equal arguments give equal text whatever their order. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Hex SHA-256 (first 128 bits) of the call's tool name and arguments. */
export function callDigestOf(tool: string, args: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(stableJson({ tool, args })))).slice(0, 32);
}

/** `<workflowId>:<runId>:<stepIndex>:<digest of tool and arguments>`. */
export function callKeyOf(call: ToolCallIdentity): string {
  return `${call.workflowId}:${call.runId}:${call.stepIndex}:${callDigestOf(call.tool, call.args)}`;
}
