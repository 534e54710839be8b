/**
 * Verifies a delegation chain, root grant first, link by link back to the user.
 *
 * Invariant: a chain verifies only if every link is a grant Warden signed, each child names its
 * parent's id AND the hash of the parent's exact token (so a link cannot be swapped, forged or
 * reordered), its depth is its parent's + 1, its lineage and `act` chain extend the parent's by
 * exactly one step, it acts for the same user, and it passes the delegation rule.
 *
 * Codes: a link not signed by a Warden key, or naming its parent's id with another token's hash
 * → ERR_DELEGATION_FORGED; a link naming another parent (reordered, missing or spliced links)
 * or inconsistent depth / lineage / act / user → ERR_DELEGATION_BROKEN; a link wider, longer-lived
 * or deeper than allowed → ERR_DELEGATION_WIDENS / _EXPIRY / _DEPTH; an expired or otherwise
 * invalid grant → its CredentialError code.
 */
import { CredentialError, DelegationError } from '../errors';
import { actChainOf, sameActChain } from './agent-identity';
import type { GrantClaims } from './claims';
import { systemClock, type Clock } from './clock';
import { checkDelegation } from './delegation';
import { verifyTaskGrant, type IssuedGrant } from './task-grant';
import { VerificationKeySet, type KeySource } from './token-verification';

/** Credential codes meaning "Warden did not sign this link as it stands". */
const FORGERY_CODES = new Set([
  'ERR_CREDENTIAL_SIGNATURE',
  'ERR_CREDENTIAL_KID_UNKNOWN',
  'ERR_CREDENTIAL_ALG',
  'ERR_CREDENTIAL_UNSIGNED',
  'ERR_CREDENTIAL_HEADER',
  'ERR_CREDENTIAL_CRIT',
]);

export interface VerifyChainOptions {
  clock?: Clock;
  /** Deepest allowed level (default: each parent's limits.maxDepth, else 3). */
  maxDepth?: number;
  clockToleranceSec?: number;
}

export interface VerifiedChain {
  /** Root first. */
  links: IssuedGrant[];
  leaf: IssuedGrant;
  /** user → agent → sub-agent(s), as the leaf's `act` claim names them. */
  actors: string[];
}

/** Verifies `tokens` (root → leaf); throws `DelegationError` or `CredentialError` naming the first bad link. */
export async function verifyDelegationChain(tokens: readonly string[], keys: KeySource | VerificationKeySet, options: VerifyChainOptions = {}): Promise<VerifiedChain> {
  if (tokens.length === 0) throw new TypeError('a delegation chain has at least the root grant');
  const keySet = keys instanceof VerificationKeySet ? keys : new VerificationKeySet(keys);
  const clock = options.clock ?? systemClock;
  const links: IssuedGrant[] = [];
  for (const [index, token] of tokens.entries()) {
    let link: IssuedGrant;
    try {
      link = await verifyTaskGrant(token, keySet, { clock, ...(options.clockToleranceSec === undefined ? {} : { clockToleranceSec: options.clockToleranceSec }) });
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      if (FORGERY_CODES.has(error.code)) {
        throw new DelegationError('ERR_DELEGATION_FORGED', `link ${index} is not a grant signed by Warden (${error.code})`, { details: { link: index, cause: error.code } });
      }
      throw new CredentialError(error.code, `link ${index}: ${error.message}`, { details: { ...error.details, link: index } });
    }
    const parent = links[index - 1];
    if (parent === undefined) checkRoot(link.claims);
    else checkLink(parent, link, index, options.maxDepth);
    links.push(link);
  }
  const leaf = links.at(-1) as IssuedGrant;
  return { links, leaf, actors: actChainOf(leaf.claims.act) };
}

function checkRoot(root: GrantClaims): void {
  const actors = actChainOf(root.act);
  const ok = root.parent === undefined && root.depth === 0 && root.lineage.length === 0 && actors.length === 2 && actors[0] === root.user && actors[1] === root.sub;
  if (!ok) {
    throw new DelegationError('ERR_DELEGATION_BROKEN', `link 0 (grant ${root.jti}) is not a root grant: the chain must start at the user's task`, {
      details: { link: 0, grant: root.jti, depth: root.depth, parent: root.parent?.id ?? null },
    });
  }
}

function checkLink(parent: IssuedGrant, child: IssuedGrant, index: number, maxDepth: number | undefined): void {
  const c = child.claims;
  const p = parent.claims;
  const broken = (why: string, details: Record<string, unknown> = {}) =>
    new DelegationError('ERR_DELEGATION_BROKEN', `link ${index} (grant ${c.jti}): ${why}`, { details: { link: index, grant: c.jti, parentGrant: p.jti, ...details } });
  if (c.parent === undefined) throw broken('names no parent');
  if (c.parent.id !== p.jti) throw broken(`names parent ${c.parent.id}, but the previous link is ${p.jti} (reordered or missing link)`, { namedParent: c.parent.id });
  if (c.parent.hash !== parent.hash) {
    throw new DelegationError('ERR_DELEGATION_FORGED', `link ${index} (grant ${c.jti}): the parent's token does not match the hash the link names`, {
      details: { link: index, grant: c.jti, parentGrant: p.jti },
    });
  }
  if (c.depth !== p.depth + 1) throw broken(`depth ${c.depth} does not follow the parent's ${p.depth}`);
  if (c.lineage.length !== p.lineage.length + 1 || c.lineage.at(-1) !== p.jti || !p.lineage.every((id, i) => c.lineage[i] === id)) throw broken('lineage does not extend the parent\'s');
  if (c.user !== p.user) throw broken(`acts for ${c.user}, the parent for ${p.user}`);
  if (c.act.sub !== c.sub || c.act.act === undefined || !sameActChain(c.act.act, p.act)) throw broken('act chain does not extend the parent\'s by this agent');
  try {
    checkDelegation(p, { grants: c.grants, limits: c.limits }, { expiresAt: c.exp * 1000, depth: c.depth, ...(maxDepth === undefined ? {} : { maxDepth }) });
  } catch (error) {
    if (error instanceof DelegationError) {
      throw new DelegationError(error.code, `link ${index} (grant ${c.jti}): ${error.message}`, { details: { ...error.details, link: index, grant: c.jti } });
    }
    throw error;
  }
}
