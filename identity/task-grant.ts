/**
 * The task grant: Warden's signed statement that agent A, acting for user U on intent I (by its
 * hash), may use exactly these tools, sub-agents, hosts and databases until the task's deadline.
 * A sub-agent's grant names its parent's id and the SHA-256 of the parent's compact JWS, extends
 * the parent's `act` chain by one actor, and passes the delegation rule (delegation.ts).
 *
 * Invariants: a grant is only issued through `issueTaskGrant`, which derives depth, lineage, user
 * and `act` from the (verified) parent instead of taking them from the caller; a grant never
 * outlives its task; the token is returned to the caller and never logged or recorded here.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CredentialError, DelegationError } from '../errors';
import { actClaimOf, agentId, extendActChain, userId } from './agent-identity';
import { GRANT_TYP, GrantClaimsSchema, GrantLimitsSchema, GrantSetSchema, WARDEN_ISSUER, type GrantClaims, type GrantLimits, type GrantSet } from './claims';
import { systemClock, toNumericDate, type Clock } from './clock';
import { checkDelegation } from './delegation';
import type { Keystore } from './keystore';
import { VerificationKeySet, verifyWardenToken, type KeySource } from './token-verification';

export { hashIntent } from './intent-hash';

/** `sha256:<hex>` of a grant's compact JWS: what a child grant names as its parent. */
export function grantHash(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'ascii').digest('hex')}`;
}

/** A parent grant as the token (verified here) or as verified claims with the token's hash (e.g. from the grant store). */
export type ParentGrant = { token: string } | { claims: GrantClaims; hash: string };

export interface IssueTaskGrantInput {
  /** The task's (or sub-agent's child) workflow id; part of the agent id. */
  workflowId: string;
  /** The human: "alice@example.com" or "user:alice@example.com". A sub-agent inherits its parent's; giving another is refused. */
  user?: string;
  /** `hashIntent(intent)`. */
  intentHash: string;
  agent: { name: string; model: { id: string; version: string } };
  grants: GrantSet;
  /** Budgets this grant carries (a child's may only be lower than its parent's). */
  limits?: GrantLimits;
  /** Epoch ms: the task's deadline. */
  expiresAt: number;
  /** The parent's grant, for a sub-agent. */
  parent?: ParentGrant;
  /** Deepest allowed sub-agent level for the delegation check (default: parent's limits.maxDepth, else 3). */
  maxDepth?: number;
  /** Sub-agents: `sha256:<hex>` of what the parent hands the child workflow (the `handoff` claim). */
  handoffDigest?: string;
}

/** An issued or verified grant. `token` is a bearer secret for Warden's own use: keep it out of prompts, logs and history. */
export interface IssuedGrant {
  token: string;
  claims: GrantClaims;
  /** The grant id (`jti`). */
  id: string;
  /** `grantHash(token)`. */
  hash: string;
}

/**
 * Signs a task grant. For a sub-agent (`parent` given) the request must be a subset of the
 * parent's grant, expire no later and stay within the depth limit, else a `DelegationError`
 * (ERR_DELEGATION_WIDENS naming the exact entry, ERR_DELEGATION_EXPIRY, ERR_DELEGATION_DEPTH).
 */
export async function issueTaskGrant(keystore: Keystore, input: IssueTaskGrantInput): Promise<IssuedGrant> {
  const now = keystore.clock();
  const iat = toNumericDate(now);
  const grants = parseInput(GrantSetSchema, input.grants, 'grants');
  const limits = parseInput(GrantLimitsSchema, input.limits ?? {}, 'limits');
  const sub = agentId(input.agent.name, input.workflowId);
  // Rounded up: truncating to whole seconds must never end a grant before its task's deadline.
  const exp = Math.ceil(input.expiresAt / 1000);
  if (!Number.isFinite(exp) || exp <= iat) {
    throw new CredentialError('ERR_CREDENTIAL_EXPIRED', `cannot issue a grant expiring at ${new Date(input.expiresAt).toISOString()}: that is not in the future`, {
      details: { expiresAt: input.expiresAt },
    });
  }

  let parentClaims: GrantClaims | undefined;
  let parentHash: string | undefined;
  if (input.parent !== undefined) {
    if ('token' in input.parent) {
      const verified = await verifyTaskGrant(input.parent.token, keystore, { clock: keystore.clock });
      parentClaims = verified.claims;
      parentHash = verified.hash;
    } else {
      parentClaims = parseInput(GrantClaimsSchema, input.parent.claims, 'parent.claims');
      parentHash = input.parent.hash;
      if (parentClaims.exp <= iat) {
        throw new CredentialError('ERR_CREDENTIAL_EXPIRED', `the parent grant ${parentClaims.jti} has expired`, { details: { parentGrant: parentClaims.jti } });
      }
    }
    if (input.user !== undefined && userId(input.user) !== parentClaims.user) {
      throw new DelegationError('ERR_DELEGATION_WIDENS', `user: "${userId(input.user)}" is not the parent's user "${parentClaims.user}"`, {
        details: { parentGrant: parentClaims.jti, scope: 'user', entry: userId(input.user) },
      });
    }
    checkDelegation(parentClaims, { grants, limits }, { expiresAt: input.expiresAt, ...(input.maxDepth === undefined ? {} : { maxDepth: input.maxDepth }) });
  } else if (input.user === undefined) {
    throw new TypeError('a root grant needs the user it acts for');
  }

  const user = parentClaims?.user ?? userId(input.user as string);
  const claims = parseInput(
    GrantClaimsSchema,
    {
      iss: WARDEN_ISSUER,
      sub,
      aud: WARDEN_ISSUER,
      jti: randomUUID(),
      iat,
      nbf: iat,
      exp,
      act: parentClaims === undefined ? actClaimOf([user, sub]) : extendActChain(parentClaims.act, sub),
      user,
      workflow_id: input.workflowId,
      intent_hash: input.intentHash,
      agent: { name: input.agent.name, model: { id: input.agent.model.id, version: input.agent.model.version } },
      grants,
      limits,
      ...(parentClaims === undefined ? {} : { parent: { id: parentClaims.jti, hash: parentHash } }),
      lineage: parentClaims === undefined ? [] : [...parentClaims.lineage, parentClaims.jti],
      depth: parentClaims === undefined ? 0 : parentClaims.depth + 1,
      ...(input.handoffDigest === undefined ? {} : { handoff: input.handoffDigest }),
    },
    'grant claims',
  );
  const token = await keystore.signer().sign(claims, GRANT_TYP);
  return { token, claims, id: claims.jti, hash: grantHash(token) };
}

export interface VerifyTaskGrantOptions {
  clock?: Clock;
  clockToleranceSec?: number;
}

/**
 * Verifies a grant token (the same header, key and signature checks as a call credential, with
 * `typ: warden-grant+jwt` and `aud: warden`); throws `CredentialError` naming the failed check.
 */
export async function verifyTaskGrant(token: string, keys: KeySource | VerificationKeySet, options: VerifyTaskGrantOptions = {}): Promise<IssuedGrant> {
  const keySet = keys instanceof VerificationKeySet ? keys : new VerificationKeySet(keys);
  const { claims } = await verifyWardenToken(token, keySet, {
    typ: GRANT_TYP,
    issuer: WARDEN_ISSUER,
    audience: WARDEN_ISSUER,
    claims: GrantClaimsSchema,
    clock: options.clock ?? systemClock,
    ...(options.clockToleranceSec === undefined ? {} : { clockToleranceSec: options.clockToleranceSec }),
  });
  return { token, claims, id: claims.jti, hash: grantHash(token) };
}

function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new TypeError(`invalid ${what}: ${issues.join('; ')}`);
  }
  return result.data;
}
