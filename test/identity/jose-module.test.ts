/**
 * jose as the build loads it (identity/jose.ts, scripts/bundle-jose.js): one CommonJS module
 * holding jose's own code, so `warden run` and the sandbox host no longer load jose's ~80 ES
 * modules one by one through Node's ES module loader, without the code cache (issue 17). It must
 * be jose itself: the same exports, nothing of jose's ES modules loaded, and what it signs jose
 * verifies (and the other way round), in strict mode as jose's modules run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import * as wardenJose from '../../identity/jose';
import { REPO_ROOT } from '../support/warden-test-env';

const { bundleJose } = createRequire(__filename)(join(REPO_ROOT, 'scripts', 'bundle-jose.js')) as { bundleJose(outfile: string): string };

const dir = mkdtempSync(join(tmpdir(), 'warden-jose-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` (CommonJS, async, `bundle` = the bundled module) in a fresh Node process without tsx; its JSON output. */
function inFreshNode(bundle: string, body: string): unknown {
  const source = `const bundle = require(${JSON.stringify(bundle)}); (async () => { ${body} })().then((out) => process.stdout.write(JSON.stringify(out)), (e) => { console.error(e); process.exit(1); });`;
  // NODE_PATH: the module in the temporary folder finds this install's jose, as the build's finds the one beside it.
  return JSON.parse(execFileSync(process.execPath, ['-e', source], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', NODE_PATH: join(REPO_ROOT, 'node_modules') }, timeout: 60_000 }));
}

describe('identity/jose', () => {
  it('is jose from the sources', () => {
    expect(Object.keys(wardenJose).sort()).toEqual(Object.keys(jose).sort());
    expect(wardenJose.importJWK).toBe(jose.importJWK);
  });

  describe('bundled by the build', () => {
    // The build writes the bundle beside the compiled identity/jose.js, which picks it (scripts/bundle-jose.js).
    const picker = join(dir, 'jose.js');
    const line = bundleJose(picker);
    const bundle = join(dir, 'jose-bundle.js');

    it('is the module Warden loads while the jose installed beside it is the version bundled', () => {
      const out = inFreshNode(picker, `return { bundled: bundle === require(${JSON.stringify(bundle)}), joseFiles: Object.keys(require.cache).filter((f) => f.includes('node_modules/jose/dist')) };`);
      expect(out).toEqual({ bundled: true, joseFiles: [] });
    });

    it('is one strict CommonJS module', () => {
      expect(line).toBe('bundled jose into one CommonJS module');
      const code = readFileSync(bundle, 'utf8');
      expect(code.startsWith("'use strict';")).toBe(true);
      // No import of jose (or anything) left for Node's ES module loader.
      expect(code).not.toMatch(/\bimport\s*\(|\brequire\(["']jose/);
    });

    it('has jose\'s exports and loads none of jose\'s ES modules', () => {
      const out = inFreshNode(bundle, `return { names: Object.keys(bundle).sort(), joseFiles: Object.keys(require.cache).filter((f) => f.includes('node_modules/jose/')) };`) as { names: string[]; joseFiles: string[] };
      expect(out.names).toEqual(Object.keys(jose).sort());
      expect(out.joseFiles).toEqual([]);
    });

    it('signs what jose verifies, and verifies what jose signs (EdDSA and ES256)', async () => {
      for (const alg of ['EdDSA', 'ES256'] as const) {
        // Signed by the bundle, in its own process, with a key it made; verified here by jose.
        const signed = inFreshNode(
          bundle,
          `const { privateKey, publicKey } = await bundle.generateKeyPair(${JSON.stringify(alg)}, { extractable: true });
           const token = await new bundle.SignJWT({ sub: 'agent' }).setProtectedHeader({ alg: ${JSON.stringify(alg)} }).setIssuer('warden').setExpirationTime('5m').sign(privateKey);
           return { token, jwk: await bundle.exportJWK(publicKey), thumbprint: await bundle.calculateJwkThumbprint(await bundle.exportJWK(publicKey)) };`,
        ) as { token: string; jwk: jose.JWK; thumbprint: string };
        const { payload } = await jose.jwtVerify(signed.token, await jose.importJWK(signed.jwk, alg), { issuer: 'warden' });
        expect(payload.sub).toBe('agent');
        expect(await jose.calculateJwkThumbprint(signed.jwk)).toBe(signed.thumbprint);

        // Signed here by jose; verified by the bundle, which also refuses it tampered, with jose's error code.
        const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
        const token = await new jose.SignJWT({ sub: 'tool' }).setProtectedHeader({ alg }).setIssuer('warden').setExpirationTime('5m').sign(privateKey);
        const jwk = await jose.exportJWK(publicKey);
        const tampered = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
        const verified = inFreshNode(
          bundle,
          `const key = await bundle.importJWK(${JSON.stringify(jwk)}, ${JSON.stringify(alg)});
           const { payload } = await bundle.jwtVerify(${JSON.stringify(token)}, key, { issuer: 'warden' });
           const refused = await bundle.jwtVerify(${JSON.stringify(tampered)}, key).then(() => 'accepted', (e) => e instanceof bundle.errors.JOSEError ? e.code : 'other error');
           return { sub: payload.sub, refused };`,
        ) as { sub: string; refused: string };
        expect(verified).toEqual({ sub: 'tool', refused: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
      }
    });
  });
});
