/**
 * The attack battery of issue 3: every way to get a tool to accept a credential it must not,
 * each refused with its OWN error code. One row per attack class (variants of the same class,
 * e.g. the different key-carrying headers, share the row's code); the last test asserts that no
 * two rows share a code.
 */
import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { verifyDelegationChain } from '../../identity/delegation-chain';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import {
  b64url,
  childGrantInput,
  codeOf,
  createAuthority,
  decodePart,
  errorOf,
  foreignEd25519Key,
  privateKeyOf,
  resignGrant,
  rootGrantInput,
  signCompact,
  T0,
  type Authority,
} from './identity-test-kit';

const TOOL = 'fs.read';
const SCOPE = ['fs.read:notes.txt'];
const TYP = 'warden-call+jwt';

let a: Authority;
let child: IssuedGrant;
let grandchild: IssuedGrant;

beforeAll(async () => {
  a = await createAuthority('attacks');
  child = await issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer'));
  grandchild = await issueTaskGrant(a.keystore, childGrantInput(child, 'checker', { grants: { tools: ['fs.read'], subagents: [], hosts: [], databases: [] } }));
});
afterAll(() => a.close());

/** A genuine credential for fs.read:notes.txt, minted now. */
const mint = async () => mintCallCredential(a.keystore, a.root, { tool: TOOL, scope: SCOPE });
const verify = (token: string, tool = TOOL, requiredScope = SCOPE) => a.verifier.verify(token, { tool, requiredScope });
const kid = () => a.keystore.activeKid();
const realKey = () => privateKeyOf(a.keystore, kid());
const chain = (...tokens: string[]) => verifyDelegationChain(tokens, a.keystore, { clock: a.time.clock });

/** Header + payload of a genuine credential, re-signed with an HMAC over `secret` as HS256. */
async function hs256With(secret: Buffer | string): Promise<string> {
  const { claims } = await mint();
  const input = `${b64url({ alg: 'HS256', kid: kid(), typ: TYP })}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** A genuine credential's claims signed by the attacker's own key, announcing it in `extra` headers. */
async function attackerSigned(extra: Record<string, unknown>, kidValue: string | undefined = 'attacker-key'): Promise<string> {
  const { claims } = await mint();
  const key = foreignEd25519Key();
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const header = { alg: 'EdDSA', typ: TYP, ...(kidValue === undefined ? {} : { kid: kidValue }), ...extra };
  return signCompact(JSON.parse(JSON.stringify(header).replace('"$jwk"', JSON.stringify(jwk))) as Record<string, unknown>, claims, key);
}

/** A genuine credential with one payload claim changed and the original signature kept. */
async function tampered(edit: (claims: Record<string, unknown>) => void): Promise<string> {
  const { token } = await mint();
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  edit(claims);
  return `${header}.${b64url(claims)}.${signature}`;
}

async function atTime<T>(offsetMs: number, work: () => Promise<T>): Promise<T> {
  a.time.now = T0 + offsetMs;
  try {
    return await work();
  } finally {
    a.time.now = T0;
  }
}

interface AttackRow {
  attack: string;
  code: string;
  variants: [string, () => Promise<unknown>][];
}

const BATTERY: AttackRow[] = [
  {
    attack: 'alg: none',
    code: 'ERR_CREDENTIAL_UNSIGNED',
    variants: [
      ['alg "none", empty signature', async () => verify(`${b64url({ alg: 'none', kid: kid(), typ: TYP })}.${b64url((await mint()).claims)}.`)],
      ['alg "None", empty signature', async () => verify(`${b64url({ alg: 'None', typ: TYP })}.${b64url((await mint()).claims)}.`)],
      ['alg "none" with a real signature left on', async () => {
        const { token } = await mint();
        return verify(`${b64url({ alg: 'none', kid: kid(), typ: TYP })}.${token.split('.')[1]}.${token.split('.')[2]}`);
      }],
    ],
  },
  {
    attack: 'HS256 signed with the public key (key confusion) and other algorithms',
    code: 'ERR_CREDENTIAL_ALG',
    variants: [
      ['HMAC secret = the raw Ed25519 public key bytes', () => hs256With(Buffer.from(a.keystore.jwks().keys[0]?.x as string, 'base64url')).then((t) => verify(t))],
      ['HMAC secret = the published JWKS entry', () => hs256With(JSON.stringify(a.keystore.jwks().keys[0])).then((t) => verify(t))],
      ['HMAC secret = the public key as SPKI PEM', () => hs256With(createPublicKey(realKey()).export({ format: 'pem', type: 'spki' }) as string).then((t) => verify(t))],
      ['RS256 claimed', async () => verify(signCompact({ alg: 'RS256', kid: kid(), typ: TYP }, (await mint()).claims, realKey()))],
      ['ES256 claimed for an Ed25519 kid', async () => verify(signCompact({ alg: 'ES256', kid: kid(), typ: TYP }, (await mint()).claims, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey))],
      ['no alg at all', async () => verify(signCompact({ kid: kid(), typ: TYP }, (await mint()).claims, realKey()))],
    ],
  },
  {
    attack: 'embedded jwk / jku / x5u headers',
    code: 'ERR_CREDENTIAL_HEADER',
    variants: [
      ['jwk: the attacker\'s own public key', () => attackerSigned({ jwk: '$jwk' }).then((t) => verify(t))],
      ['jwk with the real kid', () => attackerSigned({ jwk: '$jwk' }, kid()).then((t) => verify(t))],
      ['jku: a key set URL', () => attackerSigned({ jku: 'https://attacker.example/jwks.json' }).then((t) => verify(t))],
      ['x5u: a certificate URL', () => attackerSigned({ x5u: 'https://attacker.example/cert.pem' }).then((t) => verify(t))],
      ['x5c: an inline certificate chain', () => attackerSigned({ x5c: ['MIIB'] }).then((t) => verify(t))],
      ['an unexpected header signed with the real key', async () => verify(signCompact({ alg: 'EdDSA', kid: kid(), typ: TYP, b64: false }, (await mint()).claims, realKey()))],
    ],
  },
  {
    attack: 'unknown kid',
    code: 'ERR_CREDENTIAL_KID_UNKNOWN',
    variants: [
      ['signed by a foreign key under its own kid', () => attackerSigned({}, 'attacker-key').then((t) => verify(t))],
      ['a well-formed thumbprint no one published', () => attackerSigned({}, 'A'.repeat(43)).then((t) => verify(t))],
      ['no kid', () => attackerSigned({}, undefined).then((t) => verify(t))],
    ],
  },
  {
    attack: 'tampered payload (signature kept)',
    code: 'ERR_CREDENTIAL_SIGNATURE',
    variants: [
      ['scope widened to /etc/passwd', () => tampered((c) => { c['scope'] = ['fs.read:/etc/passwd']; }).then((t) => verify(t, TOOL, ['fs.read:/etc/passwd']))],
      ['audience moved to fs.write', () => tampered((c) => { c['aud'] = 'tool:fs.write'; }).then((t) => verify(t, 'fs.write', []))],
      ['expiry pushed out a day', () => tampered((c) => { c['exp'] = (c['exp'] as number) + 86_400; }).then((t) => verify(t))],
      ['foreign key signing under the real kid', () => attackerSigned({}, kid()).then((t) => verify(t))],
      ['signature of another credential', async () => {
        const [x, y] = [await mint(), await mint()];
        return verify(`${x.token.split('.').slice(0, 2).join('.')}.${y.token.split('.')[2]}`);
      }],
    ],
  },
  {
    attack: 'expired',
    code: 'ERR_CREDENTIAL_EXPIRED',
    variants: [
      ['verified at exp', async () => { const { token } = await mint(); return atTime(60_000, () => verify(token)); }],
      ['verified an hour later', async () => { const { token } = await mint(); return atTime(3_600_000, () => verify(token)); }],
    ],
  },
  {
    attack: 'not yet valid',
    code: 'ERR_CREDENTIAL_NOT_YET_VALID',
    variants: [['minted two minutes ahead of the verifier\'s clock', async () => { const { token } = await atTime(120_000, mint); return verify(token); }]],
  },
  {
    attack: 'wrong audience',
    code: 'ERR_CREDENTIAL_AUDIENCE',
    variants: [
      ['an fs.read credential presented to fs.write', async () => verify((await mint()).token, 'fs.write', [])],
      ['presented to a user-defined tool', async () => verify((await mint()).token, 'word-count', [])],
    ],
  },
  {
    attack: 'wrong issuer',
    code: 'ERR_CREDENTIAL_ISSUER',
    variants: [['signed with the real key, iss "not-warden"', async () => verify(await a.keystore.signer().sign({ ...(await mint()).claims, iss: 'not-warden' }, TYP))]],
  },
  {
    attack: 'unknown crit header',
    code: 'ERR_CREDENTIAL_CRIT',
    variants: [
      ['crit names an extension, signed with the real key', async () => verify(signCompact({ alg: 'EdDSA', kid: kid(), typ: TYP, crit: ['x-warden-ext'], 'x-warden-ext': 1 }, (await mint()).claims, realKey()))],
      ['crit: ["b64"] with b64: false', async () => verify(signCompact({ alg: 'EdDSA', kid: kid(), typ: TYP, crit: ['b64'], b64: false }, (await mint()).claims, realKey()))],
    ],
  },
  {
    attack: 'replayed jti',
    code: 'ERR_CREDENTIAL_REPLAYED',
    variants: [['the same credential twice', async () => { const { token } = await mint(); await verify(token); return verify(token); }]],
  },
  {
    attack: 'a credential of a finished task',
    code: 'ERR_CREDENTIAL_REVOKED',
    variants: [
      ['task grant ended before its exp', async () => {
        const task = await issueTaskGrant(a.keystore, rootGrantInput());
        const { token } = await mintCallCredential(a.keystore, task, { tool: TOOL, scope: SCOPE });
        a.stores.revocation.revokeGrant(task.id, 'task completed');
        return verify(token);
      }],
      ['parent task ended, sub-agent credential', async () => {
        const task = await issueTaskGrant(a.keystore, rootGrantInput());
        const sub = await issueTaskGrant(a.keystore, childGrantInput(task, 'reviewer'));
        const { token } = await mintCallCredential(a.keystore, sub, { tool: TOOL, scope: SCOPE });
        a.stores.revocation.revokeGrant(task.id, 'task cancelled');
        return verify(token);
      }],
    ],
  },
  {
    attack: 'a sub-agent grant that widens its scope',
    code: 'ERR_DELEGATION_WIDENS',
    variants: [
      ['asking for a tool the parent lacks', () => issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer', { grants: { tools: ['fs.read', 'sql.exec'], subagents: [], hosts: [], databases: [] } }))],
      ['asking for a host the parent lacks', () => issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer', { grants: { tools: [], subagents: [], hosts: ['evil.example'], databases: [] } }))],
      ['asking for a bigger step budget', () => issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer', { limits: { maxSteps: 500, toolTimeoutMs: 5000, toolMemoryMb: 32 } }))],
      ['a widened child grant signed with the real key, in a chain', () => {
        const widened = resignGrant(a.keystore, child.claims, realKey(), kid(), (c) => ({ ...c, grants: { ...c.grants, tools: [...c.grants.tools, 'sql.exec'] } }));
        return chain(a.root.token, widened);
      }],
    ],
  },
  {
    attack: 'a forged delegation link',
    code: 'ERR_DELEGATION_FORGED',
    variants: [
      ['child grant signed by a foreign key', () => chain(a.root.token, resignGrant(a.keystore, child.claims, foreignEd25519Key(), 'attacker-key'))],
      ['child grant signed by a foreign key under the real kid', () => chain(a.root.token, resignGrant(a.keystore, child.claims, foreignEd25519Key(), kid()))],
      ['parent hash does not match the parent token', async () => {
        const forged = await issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer', { parent: { claims: a.root.claims, hash: `sha256:${'0'.repeat(64)}` } }));
        return chain(a.root.token, forged.token);
      }],
      ['a different parent token under the same id', async () => {
        const impostor = resignGrant(a.keystore, a.root.claims, realKey(), kid(), (c) => ({ ...c, grants: { ...c.grants, tools: [...c.grants.tools, 'sql.exec'] } }));
        return chain(impostor, child.token);
      }],
    ],
  },
  {
    attack: 'a reordered or incomplete chain',
    code: 'ERR_DELEGATION_BROKEN',
    variants: [
      ['child and grandchild swapped', () => chain(a.root.token, grandchild.token, child.token)],
      ['middle link missing', () => chain(a.root.token, grandchild.token)],
      ['chain not starting at the user\'s task', () => chain(child.token, grandchild.token)],
      ['a grant of another task spliced in', async () => chain((await issueTaskGrant(a.keystore, rootGrantInput())).token, child.token)],
    ],
  },
  {
    attack: 'depth over the limit',
    code: 'ERR_DELEGATION_DEPTH',
    variants: [
      ['a fourth level under the default limit of 3', async () => {
        let grant = grandchild;
        grant = await issueTaskGrant(a.keystore, childGrantInput(grant, 'reviewer', { grants: { tools: [], subagents: [], hosts: [], databases: [] } }));
        return issueTaskGrant(a.keystore, childGrantInput(grant, 'checker', { grants: { tools: [], subagents: [], hosts: [], databases: [] } }));
      }],
      ['a verified chain deeper than the verifier allows', () => verifyDelegationChain([a.root.token, child.token, grandchild.token], a.keystore, { clock: a.time.clock, maxDepth: 1 })],
    ],
  },
  // Beyond the issue's list, each remaining check has its own code too.
  {
    attack: 'malformed token',
    code: 'ERR_CREDENTIAL_MALFORMED',
    variants: [
      ['two parts', () => verify('eyJhbGciOiJFZERTQSJ9.e30')],
      ['header not JSON', () => verify('bm90IGpzb24.e30.c2ln')],
      ['a JWE (five parts)', () => verify('a.b.c.d.e')],
      ['not base64url', () => verify('eyJ+.e30.sig')],
      ['oversized', () => verify(`${'A'.repeat(20_000)}.e30.c2ln`)],
    ],
  },
  {
    attack: 'scope does not cover the call',
    code: 'ERR_CREDENTIAL_SCOPE',
    variants: [['a credential for notes.txt used on secrets.txt', async () => verify((await mint()).token, TOOL, ['fs.read:secrets.txt'])]],
  },
  {
    attack: 'another kind of token',
    code: 'ERR_CREDENTIAL_TYPE',
    variants: [
      ['the task grant presented as a call credential', () => verify(a.root.token)],
      ['a plain JWT (typ "JWT") signed with the real key', async () => verify(signCompact({ alg: 'EdDSA', kid: kid(), typ: 'JWT' }, (await mint()).claims, realKey()))],
    ],
  },
  {
    attack: 'a sub-agent grant outliving its parent',
    code: 'ERR_DELEGATION_EXPIRY',
    variants: [['expiry one minute after the parent\'s', () => issueTaskGrant(a.keystore, childGrantInput(a.root, 'reviewer', { expiresAt: a.root.claims.exp * 1000 + 60_000 }))]],
  },
];

describe('the attack battery', () => {
  describe.each(BATTERY)('$attack → $code', ({ code, variants }) => {
    it.each(variants)('%s', async (_name, attack) => {
      expect(await codeOf(attack)).toBe(code);
    });
  });

  it('every attack class has its own code', () => {
    const codes = BATTERY.map((row) => row.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.length).toBeGreaterThanOrEqual(20);
  });

  it('a bad signature says nothing beyond "signature verification failed"', async () => {
    const error = await errorOf(tampered((c) => { c['scope'] = ['fs.read:/etc/passwd']; }).then((t) => verify(t, TOOL, ['fs.read:/etc/passwd'])));
    expect(error.message).toBe('signature verification failed');
    expect(error.details).toEqual({});
    expect(error.cause).toBeUndefined();
  });

  it('a genuine credential still verifies after the battery (nothing above disturbed the verifier)', async () => {
    const { token } = await mint();
    expect(decodePart(token, 0)['kid']).toBe(kid());
    expect(await codeOf(verify(token))).toBe('ok');
  });
});
