// jose as one CommonJS module for the build (identity/jose.ts says why): run by scripts/build.js.
'use strict';
const { rmSync } = require('node:fs');

/**
 * Bundles jose's ES modules (the file `require('jose')` loads and everything it imports) with
 * esbuild into one CommonJS module at `outfile`. Returns the line the build logs. Without esbuild
 * (it comes with tsx, a development dependency) it writes nothing: tsc's output of
 * identity/jose.ts stays, jose's ES modules loaded as before.
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
    outfile,
    allowOverwrite: true,
    // Strict, as jose's ES modules are; jose's notice kept with its code.
    banner: { js: `'use strict';\n/*! jose ${version} (https://github.com/panva/jose), ${license} License, Copyright (c) Filip Skokan */` },
    logLevel: 'error',
  });
  rmSync(`${outfile}.map`, { force: true });
  return 'bundled jose into one CommonJS module';
}

module.exports = { bundleJose };
