/**
 * Regression test, was the open finding `bundled-jose-ignores-installed-update` (s16, atk16b, medium).
 * Fixed: the build writes the bundle as `jose-bundle.js` and the compiled identity/jose.js loads it
 * only while the jose installed beside Warden is the version bundled, else `require('jose')`
 * (scripts/bundle-jose.js).
 *
 * The finding as reported:
 * Finding (s16, atk16b; severity medium): jose updates installed beside Warden never take effect.
 *
 * Attack: since 5b938ef `npm run build` (and so `npm pack`, which runs it) writes jose's code, as
 * node_modules held it at build time, into build/identity/jose.js, the module every credential,
 * grant and approval signature check of Warden takes jose from (keystore, key sources, approval
 * decisions, token-verification's error classes; the sandbox host's credential gate with them).
 * package.json still declares `"jose": "^6.2.18"`, so an install of the tarball gets a jose in
 * node_modules, and `npm update jose` / `npm audit fix` there moves it to a patched release: `npm
 * ls jose` and `npm audit` then report the fix, but Warden keeps running the jose it was packed
 * with. The same holds in a checkout after `npm install jose@<fixed>` (npm runs no root `prepare`
 * for an install with arguments, and bin/warden.js's freshness check watches sources only).
 *
 * Why it works: the bundle inlines jose (that is its point, one CommonJS module with the code
 * cache) and nothing at run time compares it with the jose the install holds; before the change
 * `require('jose')` loaded whatever node_modules held.
 *
 * The test packs the bundle as `npm pack` would (scripts/bundle-jose.js, into
 * <install>/node_modules/warden/build/identity/jose.js), installs beside it a jose "6.2.99": jose's
 * own files, version bumped, with one line added to its entry that marks it evaluated (standing
 * for the security fix). Loading Warden's jose module must run that jose. It runs the packed one.
 *
 * Suggested fix: keep the speed only while the versions agree: the bundle records the jose version
 * it holds and, when `require('jose/package.json').version` (resolved from the bundle's place)
 * differs, exports `require('jose')` instead (jose's ES modules, as before, correct if slower; or
 * rebundle into the user's cache folder); or take jose out of `dependencies` and pin it exactly,
 * so the release that ships a jose is the only way to update it, and say so in SECURITY/README.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const { bundleJose } = createRequire(__filename)(join(REPO_ROOT, 'scripts', 'bundle-jose.js')) as { bundleJose(outfile: string): string };

const install = mkdtempSync(join(tmpdir(), 'warden-jose-update-'));
afterAll(() => rmSync(install, { recursive: true, force: true }));

it('Warden runs the jose its install was updated to', () => {
  // Warden's build as the tarball ships it.
  const wardenJose = join(install, 'node_modules', 'warden', 'build', 'identity', 'jose.js');
  mkdirSync(dirname(wardenJose), { recursive: true });
  expect(bundleJose(wardenJose)).toBe('bundled jose into one CommonJS module');

  // The jose beside it after `npm update jose`: jose's own code, a patched release.
  const installedJose = join(install, 'node_modules', 'jose');
  cpSync(dirname(createRequire(__filename).resolve('jose/package.json')), installedJose, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(installedJose, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(installedJose, 'package.json'), JSON.stringify({ ...manifest, version: '6.2.99' }));
  appendFileSync(join(installedJose, 'dist', 'webapi', 'index.js'), "\nglobalThis.__joseRunning = '6.2.99';\n");

  // A fresh Node process of the user's project loads Warden's jose module and signs with it.
  const source = `const jose = require(${JSON.stringify(wardenJose)});
    jose.generateKeyPair('EdDSA').then(() => process.stdout.write(JSON.stringify({
      installed: require('jose/package.json').version,
      running: globalThis.__joseRunning ?? 'the jose packed into warden',
    })));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', source], { cwd: install, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 })) as { installed: string; running: string };

  expect(out.installed).toBe('6.2.99');
  expect(out.running).toBe('6.2.99');
});
