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

// Read once: in workflow code every global (JSON, Object, Array) is a lookup through the V8
// context's global object interceptor, which costs more than the work done with it here.
const toJson = JSON.stringify;
const keysOf = Object.keys;
const isArray = Array.isArray;

/**
 * JSON with object members sorted by name (UTF-16 code units), so equal arguments give equal text
 * whatever their order. Members whose value is undefined are left out; undefined, functions and
 * symbols are `null` elsewhere; `toJSON` is not called; an array's holes are empty text. Call
 * keys and the policy precheck digest (policies/policy-precheck.ts) are computed from this text
 * in workflow code and recomputed on replay, so its output may never change (held to the first
 * form by test/recovery/stable-json.test.ts). Built in one pass, without an array of entries per
 * object: the workflow runs it on every step.
 */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return toJson(value) ?? 'null';
  if (isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      // A hole (never in decoded JSON) is empty text, as `map` and `join` made it.
      out += `${i === 0 ? '' : ','}${!(i in value) ? '' : item === undefined ? 'null' : stableJson(item)}`;
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const names = keysOf(record).sort();
  let out = '{';
  for (const name of names) {
    const member = record[name];
    if (member === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${toJson(name)}:${stableJson(member)}`;
  }
  return `${out}}`;
}

/** Hex SHA-256 (first 128 bits) of the call's tool name and arguments. */
export function callDigestOf(tool: string, args: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(stableJson({ tool, args })))).slice(0, 32);
}

/** `<workflowId>:<runId>:<stepIndex>:<digest of tool and arguments>`. */
export function callKeyOf(call: ToolCallIdentity): string {
  return `${call.workflowId}:${call.runId}:${call.stepIndex}:${callDigestOf(call.tool, call.args)}`;
}
