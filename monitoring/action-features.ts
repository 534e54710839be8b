/**
 * The facts of one action the monitor scores and the baselines learn: which tool, a digest of
 * the call (for loops of identical calls), the hosts and databases it reaches, the SQL operation
 * and rows it changes, the bytes it sends or writes, whether it is a network write. The same
 * function reads a live action (with the effect the policy check measured) and a recorded step
 * of a past run, so what is learnt and what is scored are measured alike.
 *
 * Hosts and bytes sent are read from what the call does on the network, whatever the tool: the
 * URL arguments of the call, the URLs its descriptor declares (the policy check's effect), and
 * the requests measured where they left (a user tool's http capability calls, a program's or MCP
 * server's requests through the egress proxy: `http.fetch` entries of the step's effects).
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
  /** `host[:port]` of every URL argument, declared URL and measured request, lower-cased. */
  hosts: string[];
  databases: string[];
  /** The SQL statement kind (`select`, `insert`, `update`, `delete`, ...), for sql tools. */
  operation?: string;
  /** Rows the call changes: measured before it runs (dry run), or reported after. */
  rows?: number;
  /** UTF-8 bytes the call writes or sends (fs.write content, an HTTP body, measured request bodies). */
  bytesOut?: number;
  /** An HTTP method other than GET, HEAD or OPTIONS (an opaque HTTPS tunnel counts). */
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

/** One request a call made (or tried: `held` before it connected), as measured where it left. */
export interface NetworkEffect {
  /** `host[:port]`, lower-case, the scheme's default port left out. */
  host: string;
  /** Upper-case; `CONNECT` for an HTTPS tunnel. */
  method: string;
  /** Bytes sent towards the host. */
  bytes?: number;
  /** It sent a body whatever its method (`write` on its `urls` entry): scored as a network write. */
  write?: boolean;
  held?: boolean;
}

/** The effect a policy check measured, as far as the monitor reads it. */
export interface MeasuredEffect {
  rowsChanged?: number;
  operation?: string;
  bytes?: number;
  /** URLs the call's descriptor declares (the policy check's `effect.urls`, read off the real arguments: a claim-checked URL's host is only there). */
  urls?: readonly { url: string; method?: string }[];
  /** Requests measured where they left (`networkEffectsOf` the step's effects). */
  network?: readonly NetworkEffect[];
}

/**
 * The requests among a step's measured effects: the `http.fetch` entries (a built-in's own call,
 * a user tool's http capability calls, a program's or MCP server's requests through the egress
 * proxy), read through their `urls` (tools/call-effects.ts vocabulary) and `bytes`.
 */
export function networkEffectsOf(effects: readonly { tool: string; effect?: unknown; decision?: string; rules?: readonly string[] }[] | undefined): NetworkEffect[] {
  const out: NetworkEffect[] = [];
  for (const entry of effects ?? []) {
    if (entry.tool !== 'http.fetch' || entry.effect === null || typeof entry.effect !== 'object') continue;
    const effect = entry.effect as { urls?: unknown; bytes?: unknown };
    if (!Array.isArray(effect.urls)) continue;
    for (const u of effect.urls as unknown[]) {
      if (u === null || typeof u !== 'object' || typeof (u as { url?: unknown }).url !== 'string') continue;
      const host = hostOfUrl((u as { url: string }).url);
      if (host === undefined) continue;
      const method = typeof (u as { method?: unknown }).method === 'string' ? (u as { method: string }).method.toUpperCase() : 'GET';
      const network: NetworkEffect = { host, method };
      if ((u as { write?: unknown }).write === true) network.write = true;
      if (typeof effect.bytes === 'number' && effect.urls.length === 1) network.bytes = effect.bytes;
      if (entry.decision !== undefined && entry.decision !== 'allow') network.held = true;
      out.push(network);
    }
  }
  return out;
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
  let declaredWrite = false;
  for (const declared of effect?.urls ?? []) {
    const host = hostOfUrl(declared.url);
    if (host === undefined) continue;
    hosts.add(host);
    if (declared.method !== undefined && !READ_METHODS.includes(declared.method.toUpperCase())) declaredWrite = true;
  }
  let measuredWrite = false;
  let measuredBytes = 0;
  for (const request of effect?.network ?? []) {
    hosts.add(request.host.toLowerCase());
    // CONNECT (an opaque tunnel) counts: what goes through it cannot be seen.
    if (request.write === true || !READ_METHODS.includes(request.method.toUpperCase())) measuredWrite = true;
    measuredBytes += request.bytes ?? 0;
  }
  if (typeof args.database === 'string') databases.add(args.database);
  const features: ActionFeatures = {
    tool,
    kind,
    digest: hash53(`${tool}\u0000${stableJson(args)}`),
    hosts: [...hosts].sort(),
    databases: [...databases].sort(),
    networkWrite: measuredWrite || declaredWrite || (hosts.size > 0 && !READ_METHODS.includes(typeof args.method === 'string' ? args.method.toUpperCase() : 'GET')),
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
  bytesOut = Math.max(bytesOut, measuredBytes);
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

/** Features of a step of a past run (for learning): rows from what the call reported, hosts and bytes from the requests it made. */
export function featuresOfStep(step: StepRecord): ActionFeatures {
  const network = networkEffectsOf(step.effects);
  const features = featuresOfAction(step.tool, step.args, network.length === 0 ? undefined : { network });
  const rows = step.executed ? rowsOfOutput(step.output) : undefined;
  if (rows !== undefined) features.rows = rows;
  return features;
}
