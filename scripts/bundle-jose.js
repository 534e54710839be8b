// jose as one CommonJS module for the build (identity/jose.ts says why): run by scripts/build.js.
'use strict';
const { rmSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

/**
 * Bundles jose's ES modules (the file `require('jose')` loads and everything it imports) with
 * esbuild into one CommonJS module, `jose-bundle.js` beside `outfile`, and writes `outfile` (the
 * compiled identity/jose.ts) as the module that picks: the bundle while the jose installed beside
 * Warden is the version bundled, else `require('jose')`. So an `npm update jose` or `npm audit fix`
 * of a user's install is what runs, as `npm ls` says (the bundle would otherwise keep the jose of
 * the build). Returns the line the build logs. Without esbuild (it comes with tsx, a development
 * dependency) it writes nothing: tsc's output of identity/jose.ts stays, jose's ES modules loaded
 * as before.
 */
function bundleJose(outfile) {
  let esbuild;
  try {
    esbuild = require('esbuild');
  } catch {
    return 'jose stays ES modules (no esbuild here)';
  }
  const { version, license } = require('jose/package.json');
  esbuild.buildSync({
    entryPoints: [require.resolve('jose')],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    // The oldest Node package.json's engines allow.
    target: 'node20',
    outfile: join(dirname(outfile), BUNDLE_FILE),
    allowOverwrite: true,
    // Strict, as jose's ES modules are; jose's notice kept with its code.
    banner: { js: `'use strict';\n/*! jose ${version} (https://github.com/panva/jose), ${license} License, Copyright (c) Filip Skokan */` },
    logLevel: 'error',
  });
  writeFileSync(outfile, chooser(version));
  rmSync(`${outfile}.map`, { force: true });
  return 'bundled jose into one CommonJS module';
}

const BUNDLE_FILE = 'jose-bundle.js';

/** The module Warden's code loads as jose: the bundle only while it is the installed jose. */
function chooser(bundledVersion) {
  return `'use strict';
// jose for Warden's modules (identity/jose.ts says why): the bundle of jose ${bundledVersion} while that
// is the jose installed beside Warden; after the install updated jose, the installed jose itself.
const BUNDLED_VERSION = ${JSON.stringify(bundledVersion)};
let installed;
try {
  installed = require('jose/package.json').version;
} catch {
  installed = undefined;
}
module.exports = installed === BUNDLED_VERSION ? require('./${BUNDLE_FILE}') : require('jose');
`;
}

module.exports = { bundleJose };
