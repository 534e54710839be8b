/**
 * The facts of one action the monitor scores and the baselines learn: which tool, a digest of
 * the call (for loops of identical calls), the hosts and databases it reaches, the SQL operation
 * and rows it changes, the bytes it sends or writes, whether it is a network write. The same
 * function reads a live action (with the effect the policy check measured) and a recorded step
 * of a past run, so what is learnt and what is scored are measured alike.
 *
 * Deterministic and free of Node imports: workflow code uses it.
 */
import type { StepRecord } from '../task/task-run';
import { isClaimCheckRef } from '../task/data-refs';

export interface ActionFeatures {
  /** Tool name, or `spawn:<sub-agent>`. */
  tool: string;
  kind: 'tool' | 'spawn';
  /** Digest of the tool and its arguments (canonical JSON): equal calls have equal digests. */
  digest: string;
  /** `host[:port]` of every URL argument, lower-cased. */
  hosts: string[];
  databases: string[];
  /** The SQL statement kind (`select`, `insert`, `update`, `delete`, ...), for sql tools. */
  operation?: string;
  /** Rows the call changes: measured before it runs (dry run), or reported after. */
  rows?: number;
  /** UTF-8 bytes the call writes or sends (fs.write content, an HTTP body). */
  bytesOut?: number;
  /** An HTTP method other than GET, HEAD or OPTIONS. */
  networkWrite: boolean;
  /** An argument value that appears only in an earlier tool's output (the policy check's provenance). */
  carriesToolOutput: boolean;
}

/** What happened when the action ran. */
export interface ActionOutcome {
  /** It ran and failed (error code), or was refused before running. */
  failed?: string;
  refused?: boolean;
  /** UTF-8 bytes of its output as JSON. */
  bytesIn?: number;
  /** Rows the call reports it changed. */
  rows?: number;
  /** A spawn's sub-agent status. */
  childStatus?: string;
}

/** JSON with object keys sorted, so equal values print equally. Not for hashing secrets: a loop detector. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** cyrb53: a fast 53-bit string hash (not cryptographic; collisions only merge two loop counts). */
export function hash53(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** `host[:port]` of a URL, lower-cased; undefined when it is not one. */
export function hostOfUrl(url: string): string | undefined {
  // The WHATWG parser, as the http capability uses it: the host scored is the host contacted
  // (a regular expression read `http://evil\\@api/` as api, where fetch goes to evil).
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return undefined;
  }
  // `host` leaves out the scheme's default port (80, 443) and lower-cases the name.
  return parsed.host === '' ? undefined : parsed.host;
}

const URL_KEYS = ['url', 'uri', 'href', 'endpoint', 'link'];
const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/** The first word of a SQL statement, lower-cased (`with` statements are read as the statement they end in). */
export function sqlOperationOf(sql: string): string | undefined {
  const words = sql.trim().toLowerCase().match(/[a-z]+/g);
  if (words === null) return undefined;
  if (words[0] !== 'with') return words[0];
  return words.find((w) => ['select', 'insert', 'update', 'delete', 'replace'].includes(w)) ?? 'with';
}

/** The effect a policy check measured, as far as the monitor reads it. */
export interface MeasuredEffect {
  rowsChanged?: number;
  operation?: string;
  bytes?: number;
  /** URLs the policy check read off the real arguments (a claim-checked URL argument's host is only there). */
  urls?: readonly { url: string }[];
}

/**
 * Features of one proposed action.
 * @param effect what the policy check measured before it runs (rows a statement would change)
 * @param provenance the policy check's provenance: argument pointer → `user` | `tool-output` | `literal`
 */
export function featuresOfAction(
  tool: string,
  args: Record<string, unknown>,
  effect?: MeasuredEffect,
  provenance?: Record<string, string>,
): ActionFeatures {
  const kind = tool.startsWith('spawn:') ? 'spawn' : 'tool';
  const hosts = new Set<string>();
  const databases = new Set<string>();
  for (const key of URL_KEYS) {
    const value = args[key];
    if (typeof value === 'string') {
      const host = hostOfUrl(value);
      if (host !== undefined) hosts.add(host);
    } else if (isClaimCheckRef(value)) {
      // A URL too long for history (the data flow): its host as the policy check read it off the
      // real value, else a host no baseline knows (scored as new, never as a known one).
      const real = (effect?.urls ?? []).map((u) => hostOfUrl(u.url)).filter((h): h is string => h !== undefined);
      for (const host of real.length > 0 ? real : [`claim-checked-${value.sha256.slice(0, 16)}.invalid`]) hosts.add(host);
    }
  }
  if (typeof args.database === 'string') databases.add(args.database);
  const features: ActionFeatures = {
    tool,
    kind,
    digest: hash53(`${tool}\u0000${stableJson(args)}`),
    hosts: [...hosts].sort(),
    databases: [...databases].sort(),
    networkWrite: hosts.size > 0 && !READ_METHODS.includes(typeof args.method === 'string' ? args.method.toUpperCase() : 'GET'),
    carriesToolOutput: Object.values(provenance ?? {}).includes('tool-output'),
  };
  const operation = effect?.operation?.toLowerCase() ?? (typeof args.sql === 'string' ? sqlOperationOf(args.sql) : undefined);
  if (operation !== undefined) features.operation = operation;
  if (effect?.rowsChanged !== undefined) features.rows = effect.rowsChanged;
  let bytesOut = 0;
  for (const key of ['content', 'body', 'data', 'text']) {
    const value = args[key];
    if (typeof value === 'string') bytesOut += utf8Length(value);
    // A value kept out of history (the data flow) counts with the bytes it stands for.
    else if (isClaimCheckRef(value)) bytesOut += value.bytes;
  }
  if (effect?.bytes !== undefined) bytesOut = Math.max(bytesOut, effect.bytes);
  if (bytesOut > 0) features.bytesOut = bytesOut;
  return features;
}

/** Rows a tool's output reports it changed (`{ changes }` of sql.exec and tools built on it). */
export function rowsOfOutput(output: unknown): number | undefined {
  if (output === null || typeof output !== 'object') return undefined;
  const changes = (output as Record<string, unknown>).changes;
  return typeof changes === 'number' && Number.isFinite(changes) && changes >= 0 ? changes : undefined;
}

/** Size of a value as JSON, in UTF-8 bytes; 0 for nothing. */
export function jsonBytes(value: unknown): number {
  if (value === undefined) return 0;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === undefined ? 0 : utf8Length(text);
}

/** What a recorded step says happened. */
export function outcomeOfStep(step: StepRecord): ActionOutcome {
  const outcome: ActionOutcome = {};
  if (!step.executed && step.decision === 'deny') outcome.refused = true;
  else if (step.error !== undefined) outcome.failed = step.error.code;
  if (step.executed && step.output !== undefined) {
    outcome.bytesIn = isClaimCheckRef(step.output) ? step.output.bytes : jsonBytes(step.output);
    const rows = rowsOfOutput(step.output);
    if (rows !== undefined) outcome.rows = rows;
    if (step.kind === 'spawn' && typeof (step.output as { status?: unknown }).status === 'string') outcome.childStatus = (step.output as { status: string }).status;
  }
  return outcome;
}

/** Features of a step of a past run (for learning): rows from what the call reported. */
export function featuresOfStep(step: StepRecord): ActionFeatures {
  const features = featuresOfAction(step.tool, step.args);
  const rows = step.executed ? rowsOfOutput(step.output) : undefined;
  if (rows !== undefined) features.rows = rows;
  return features;
}
