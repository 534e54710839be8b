/**
 * The delegation rule: what a parent may hand a sub-agent.
 *
 * Invariant: a child grant is never wider, longer-lived or deeper than allowed. Each of its
 * tools, sub-agents, hosts and databases is one of the parent's; each budget the parent has is
 * at least the child's; it expires no later than the parent; it sits at most `maxDepth` levels
 * below the user's task.
 *
 * Pure and deterministic (zod and errors.ts only): the workflow can decide a spawn with it and record
 * the refusal as data (`findDelegationViolation`) before any activity runs.
 */
import { DelegationError } from '../errors';
import { GRANT_LIMIT_NAMES, type GrantClaims, type GrantLimits, type GrantSet } from './claims';
import { toNumericDate } from './clock';

/** Sub-agent nesting allowed when nothing else says (the task file's `limits.maxDepth` default). */
export const DEFAULT_MAX_DEPTH = 3;

const GRANT_LISTS = ['tools', 'subagents', 'hosts', 'databases', 'commands'] as const satisfies readonly (keyof GrantSet)[];

/** The parts of a parent grant the rule looks at. */
export type DelegationParent = Pick<GrantClaims, 'jti' | 'grants' | 'limits' | 'exp' | 'depth'>;

/** What a sub-agent asks for. */
export interface DelegationRequest {
  grants: GrantSet;
  limits?: GrantLimits;
}

export interface DelegationOptions {
  /** Epoch ms at which the child's grant would expire. */
  expiresAt: number;
  /** Deepest allowed level (root task = 0). Default: the parent's `limits.maxDepth`, else 3; the lower of the two when both are set. */
  maxDepth?: number;
  /** Depth of the child (default: the parent's + 1). */
  depth?: number;
}

/** One entry by which a request exceeds its parent, e.g. `{ scope: 'tools', entry: 'fs.write' }`. */
export interface Widening {
  scope: string;
  entry: string;
  message: string;
}

export interface DelegationViolation {
  code: 'ERR_DELEGATION_WIDENS' | 'ERR_DELEGATION_EXPIRY' | 'ERR_DELEGATION_DEPTH';
  /** Names the first offending scope, e.g. `tools: "fs.write" is not granted to the parent`. */
  message: string;
  details: Record<string, unknown>;
}

/** Each entry of `requested`'s tools, sub-agents, hosts, databases and commands that `parent` does not hold. */
export function grantListWidenings(parent: Partial<Pick<GrantSet, (typeof GRANT_LISTS)[number]>>, requested: Partial<Pick<GrantSet, (typeof GRANT_LISTS)[number]>>): Widening[] {
  const out: Widening[] = [];
  for (const list of GRANT_LISTS) {
    for (const entry of requested[list] ?? []) {
      if (!(parent[list] ?? []).includes(entry)) out.push({ scope: list, entry, message: `${list}: "${entry}" is not granted to the parent` });
    }
  }
  return out;
}

/** Every way `requested` exceeds `parent` (empty when it is a subset). */
export function wideningsOf(parent: DelegationParent, requested: DelegationRequest): Widening[] {
  const out: Widening[] = grantListWidenings(parent.grants, requested.grants);
  const limits = requested.limits ?? {};
  for (const name of GRANT_LIMIT_NAMES) {
    const ceiling = parent.limits[name];
    if (ceiling === undefined) continue;
    const asked = limits[name];
    if (asked === undefined || asked > ceiling) {
      out.push({
        scope: `limits.${name}`,
        entry: asked === undefined ? 'unlimited' : String(asked),
        message: `limits.${name}: ${asked === undefined ? 'unlimited' : asked} exceeds the parent's ${ceiling}`,
      });
    }
  }
  return out;
}

/** The reason `requested` may not be delegated from `parent`, as data; `null` when it may. */
export function findDelegationViolation(parent: DelegationParent, requested: DelegationRequest, options: DelegationOptions): DelegationViolation | null {
  const widenings = wideningsOf(parent, requested);
  const first = widenings[0];
  if (first !== undefined) {
    return {
      code: 'ERR_DELEGATION_WIDENS',
      message: widenings.length === 1 ? first.message : `${first.message} (and ${widenings.length - 1} more)`,
      details: { parentGrant: parent.jti, scope: first.scope, entry: first.entry, widenings: widenings.map(({ scope, entry }) => ({ scope, entry })) },
    };
  }
  const exp = toNumericDate(options.expiresAt);
  if (!Number.isFinite(exp) || exp > parent.exp) {
    return {
      code: 'ERR_DELEGATION_EXPIRY',
      message: `expiry ${isoOf(exp)} is later than the parent's ${isoOf(parent.exp)}`,
      details: { parentGrant: parent.jti, exp, parentExp: parent.exp },
    };
  }
  const depth = options.depth ?? parent.depth + 1;
  const maxDepth = Math.min(options.maxDepth ?? parent.limits.maxDepth ?? DEFAULT_MAX_DEPTH, parent.limits.maxDepth ?? Number.POSITIVE_INFINITY);
  if (depth > maxDepth) {
    return {
      code: 'ERR_DELEGATION_DEPTH',
      message: `depth ${depth} is over the limit of ${maxDepth}`,
      details: { parentGrant: parent.jti, depth, maxDepth },
    };
  }
  return null;
}

/** Throws a `DelegationError` (ERR_DELEGATION_WIDENS / _EXPIRY / _DEPTH) unless `requested` is a valid narrowing of `parent`. */
export function checkDelegation(parent: DelegationParent, requested: DelegationRequest, options: DelegationOptions): void {
  const violation = findDelegationViolation(parent, requested, options);
  if (violation !== null) throw new DelegationError(violation.code, violation.message, { details: violation.details });
}

function isoOf(numericDate: number): string {
  return Number.isFinite(numericDate) ? new Date(numericDate * 1000).toISOString() : String(numericDate);
}
