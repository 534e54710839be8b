/**
 * The claim sets Warden signs, as zod schemas (the types derive from them): the task grant that
 * binds a user, an intent and an agent to what the agent may touch, and the per-call credential
 * minted from it. Verifiers parse claims with these schemas after the signature checks out, so
 * a token that is signed but not of this exact shape is still refused.
 *
 * Pure (zod only): workflow code may import this file.
 */
import { z } from 'zod';
import { SubagentNameSchema, ToolNameSchema } from '../task/task-schema';
import { ActClaimSchema, AgentIdSchema, UserIdSchema } from './agent-identity';
import { ScopeSchema } from './call-scope';

/** The issuer and grant audience: Warden's own credential authority. */
export const WARDEN_ISSUER = 'warden';
/** JOSE `typ` of a task grant. */
export const GRANT_TYP = 'warden-grant+jwt';
/** JOSE `typ` of a per-call credential. */
export const CALL_CREDENTIAL_TYP = 'warden-call+jwt';
/** The signature algorithms Warden issues and accepts; nothing else ever verifies. */
export const SIGNING_ALGS = ['EdDSA', 'ES256'] as const;
export const SigningAlgSchema = z.enum(SIGNING_ALGS);
export type SigningAlg = z.infer<typeof SigningAlgSchema>;

/** `sha256:<64 hex>`. */
export const Sha256Schema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'a "sha256:<hex>" digest');
/** Grant and credential ids (`jti`). */
export const TokenIdSchema = z.uuid();

const NumericDateSchema = z.number().int().nonnegative();
const ListSchema = <T extends z.ZodType>(item: T) => z.array(item).max(256);

/** What a grant allows; the same lists as a task file's `grants`. */
export const GrantSetSchema = z.strictObject({
  tools: ListSchema(ToolNameSchema),
  subagents: ListSchema(SubagentNameSchema),
  hosts: ListSchema(z.string().min(1).max(255)),
  databases: ListSchema(z.string().min(1).max(128)),
  /** Programs `proc.run` may start (grants without it predate programs and grant none). */
  commands: ListSchema(z.string().min(1).max(4096)).optional(),
});
export type GrantSet = z.infer<typeof GrantSetSchema>;

/** Budgets a grant carries; absent means "not limited by this grant". A child's may only be lower. */
export const GrantLimitsSchema = z.strictObject({
  maxSteps: z.number().int().nonnegative().optional(),
  maxDepth: z.number().int().nonnegative().optional(),
  toolTimeoutMs: z.number().int().positive().optional(),
  toolMemoryMb: z.number().int().positive().optional(),
});
export type GrantLimits = z.infer<typeof GrantLimitsSchema>;
export const GRANT_LIMIT_NAMES = ['maxSteps', 'maxDepth', 'toolTimeoutMs', 'toolMemoryMb'] as const satisfies readonly (keyof GrantLimits)[];

/** The link from a sub-agent's grant to its parent's: the id and the SHA-256 of the parent's compact JWS. */
export const ParentLinkSchema = z.strictObject({
  id: TokenIdSchema,
  hash: Sha256Schema,
});
export type ParentLink = z.infer<typeof ParentLinkSchema>;

export const GrantClaimsSchema = z.strictObject({
  iss: z.literal(WARDEN_ISSUER),
  /** The agent this grant is for. */
  sub: AgentIdSchema,
  aud: z.literal(WARDEN_ISSUER),
  /** The grant id. */
  jti: TokenIdSchema,
  iat: NumericDateSchema,
  nbf: NumericDateSchema,
  /** The task's deadline: the grant ends with the task. */
  exp: NumericDateSchema,
  /** user → agent → sub-agent(s), current actor outermost (RFC 8693). */
  act: ActClaimSchema,
  user: UserIdSchema,
  workflow_id: z.string().min(1).max(512),
  /** SHA-256 of the user's intent, never the intent itself. */
  intent_hash: Sha256Schema,
  agent: z.strictObject({
    name: SubagentNameSchema,
    model: z.strictObject({ id: z.string().min(1).max(256), version: z.string().min(1).max(256) }),
  }),
  grants: GrantSetSchema,
  limits: GrantLimitsSchema,
  /** Absent on the root grant. */
  parent: ParentLinkSchema.optional(),
  /** Ids of every ancestor grant, root first; revoking any of them revokes this grant. */
  lineage: z.array(TokenIdSchema).max(16),
  /** 0 for the task the user started, parent's + 1 for a sub-agent. */
  depth: z.number().int().min(0).max(16),
  /**
   * Sub-agents: `sha256:<hex>` of what the parent handed the child workflow (its task, depth,
   * lineage, deadline, policy counters; task-run.ts SubagentHandoffSchema), so the child can
   * accept only exactly that (activities/task-identity.ts `beginSubagent`).
   */
  handoff: Sha256Schema.optional(),
});
export type GrantClaims = z.infer<typeof GrantClaimsSchema>;

export const CallCredentialClaimsSchema = z.strictObject({
  iss: z.literal(WARDEN_ISSUER),
  /** The agent making the call (the grant's `sub`). */
  sub: AgentIdSchema,
  /** `tool:<name>`: exactly one tool. */
  aud: z.string().regex(/^tool:[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/, 'an audience "tool:<name>"'),
  /** Unique per call; accepted once. */
  jti: TokenIdSchema,
  iat: NumericDateSchema,
  nbf: NumericDateSchema,
  exp: NumericDateSchema,
  /** The resources of this one call (see call-scope.ts). */
  scope: z.array(ScopeSchema).max(256),
  /** Copied from the grant. */
  act: ActClaimSchema,
  /** The task grant this credential was minted from. */
  grant: TokenIdSchema,
  /** The grant's ancestors, root first. */
  lineage: z.array(TokenIdSchema).max(16),
});
export type CallCredentialClaims = z.infer<typeof CallCredentialClaimsSchema>;

/** `tool:<name>`. */
export function toolAudience(tool: string): string {
  return `tool:${tool}`;
}

/**
 * When a retired key stops verifying: epoch seconds, the key verifies while now < exp (the
 * keystore's `verifyUntil`, rounded down). A JWK member as OpenID Federation 1.0's historical
 * keys carry it; verifiers that do not know it ignore it (RFC 7517 section 4).
 */
const KeyWindowEndSchema = NumericDateSchema;

/**
 * A key's JWK `exp` from its `verifyUntil` (ISO 8601): epoch seconds rounded down, so the key
 * stops verifying at or before `verifyUntil`; every token it signed has an integral `exp` no later.
 */
export function keyWindowEnd(verifyUntil: string): number {
  return Math.floor(Date.parse(verifyUntil) / 1000);
}

/** One public verification key as published (RFC 7517 / 8037), with its window's end when it is retired. */
export const PublicJwkSchema = z.union([
  z.strictObject({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    kid: z.string().min(1).max(128),
    alg: z.literal('EdDSA'),
    use: z.literal('sig'),
    exp: KeyWindowEndSchema.optional(),
  }),
  z.strictObject({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    kid: z.string().min(1).max(128),
    alg: z.literal('ES256'),
    use: z.literal('sig'),
    exp: KeyWindowEndSchema.optional(),
  }),
]);
export type PublicJwk = z.infer<typeof PublicJwkSchema>;

export const JwksSchema = z.strictObject({ keys: z.array(PublicJwkSchema).max(64) });
export type Jwks = z.infer<typeof JwksSchema>;

/** The kids `jwks` lists more than once, each once, in list order: such a kid names no key. */
export function duplicateKids(jwks: Jwks): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { kid } of jwks.keys) (seen.has(kid) ? twice : seen).add(kid);
  return [...twice];
}
