/** The identity layer's public surface; see identity/README.md. */
export { agentId, userId, parseSubjectId, actChainOf, actClaimOf, extendActChain, formatActChain, type ActClaim, type AgentId, type UserId } from './agent-identity';
export { fsScope, httpScope, sqlScope, parseScope, scopeOutsideGrant } from './call-scope';
export {
  CALL_CREDENTIAL_TYP,
  GRANT_TYP,
  SIGNING_ALGS,
  WARDEN_ISSUER,
  CallCredentialClaimsSchema,
  GrantClaimsSchema,
  GrantLimitsSchema,
  GrantSetSchema,
  JwksSchema,
  toolAudience,
  type CallCredentialClaims,
  type GrantClaims,
  type GrantLimits,
  type GrantSet,
  type Jwks,
  type SigningAlg,
} from './claims';
export { systemClock, type Clock } from './clock';
export { mintCallCredential, DEFAULT_CREDENTIAL_TTL_MS, type MintCallCredentialOptions, type MintedCredential } from './credential';
export { openCredentialStores, createMemoryCredentialStores, IDENTITY_DB_FILE, type CredentialStores, type GrantStore, type ReplayStore, type RevocationStore, type RevocationRecord } from './credential-stores';
export { checkDelegation, findDelegationViolation, DEFAULT_MAX_DEPTH, type DelegationRequest, type DelegationViolation } from './delegation';
export { verifyDelegationChain, type VerifiedChain } from './delegation-chain';
export { openKeystore, readJwksFile, type Keystore, type KeyInfo, type JwtSigner } from './keystore';
export { findSecrets, findSecretsIn, assertNoSecrets, redactSecrets } from './redact';
export { issueTaskGrant, verifyTaskGrant, hashIntent, grantHash, type IssueTaskGrantInput, type IssuedGrant, type ParentGrant } from './task-grant';
export { decodeTokenUnverified, VerificationKeySet, type KeySource } from './token-verification';
export { createCredentialVerifier, type CredentialVerifier, type CredentialVerifierOptions, type VerifiedCredential, type VerifyCallOptions } from './verify-credential';
