#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` in a checkout, through `prepare`):
// compiles the TypeScript sources to build/ (JavaScript, .d.ts), copies the data files the code
// reads at run time (policy packs, the Cedar schema, the OS sandbox's scripts), pre-builds the workflow bundles from the
// compiled code, and writes build/BUILD_STAMP last, so a half-finished build is never taken for
// a finished one (bin/warden.js checks the stamp).
'use strict';
const { execFileSync } = require('node:child_process');
const { copyFileSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } = require('node:fs');
const { extname, join, relative } = require('node:path');
const { prepareMaySkip } = require('./build-freshness');
const { bundleJose } = require('./bundle-jose');

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'build');
/** Source folders of the package (tsconfig.build.json includes the same). */
const SOURCE_DIRS = require('../tsconfig.build.json').include.filter((entry) => !entry.endsWith('.ts'));
/** Example folders of the policy packs are test data, not something the code reads. */
const NOT_SHIPPED_DIRS = new Set(['ALLOW', 'DENY', 'APPROVAL']);

function log(line) {
  if (process.env.WARDEN_BUILD_QUIET !== '1') process.stderr.write(`warden build: ${line}\n`);
}

/** Every file under `dir` the code may read at run time: anything but TypeScript and Markdown. */
function dataFiles(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!NOT_SHIPPED_DIRS.has(entry.name)) dataFiles(path, out);
    } else if (!['.ts', '.md'].includes(extname(entry.name))) {
      out.push(path);
    }
  }
  return out;
}

function main() {
  if (prepareMaySkip(process.env, ROOT)) {
    log('the build is up to date (npx runs prepare when it first links this checkout); skipped');
    return;
  }
  const started = Date.now();
  // A fresh output folder: nothing of a deleted source file survives.
  rmSync(OUT, { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  log(`compiled TypeScript in ${((Date.now() - started) / 1000).toFixed(1)}s`);

  let copied = 0;
  for (const dir of SOURCE_DIRS) {
    for (const file of dataFiles(join(ROOT, dir))) {
      const target = join(OUT, relative(ROOT, file));
      mkdirSync(join(target, '..'), { recursive: true });
      copyFileSync(file, target);
      copied += 1;
    }
  }
  log(`copied ${copied} data file(s)`);

  // Over tsc's output of identity/jose.ts: jose loaded as one CommonJS module (that file says why).
  log(bundleJose(join(OUT, 'identity', 'jose.js')));

  // JSON Schema draft-07's meta-schema as ajv standalone code: tool schemas are checked with it
  // instead of compiling the meta-schema in every process (tools/tool-input-validator.ts).
  const toolInput = require(join(OUT, 'tools', 'tool-input-validator.js'));
  writeFileSync(toolInput.PRECOMPILED_META_VALIDATOR, toolInput.metaValidatorSource());
  log('wrote the JSON Schema meta-schema validator');

  // The bundled packs' Cedar policies, validated now so processes of this build skip validating
  // them again (policies/engine/prevalidated-policies.ts).
  const engine = join(OUT, 'policies', 'engine');
  const { cedar, cedarPolicies, compileRule, WARDEN_CEDAR_SCHEMA } = require(join(engine, 'compile-rule.js'));
  const { PACKS_DIR, readPacks } = require(join(engine, 'load-pack.js'));
  const { isResponseRule } = require(join(engine, 'parse-response-rule.js'));
  const { bundledPackNames, writePrevalidatedPolicies, PREVALIDATED_FILE } = require(join(engine, 'prevalidated-policies.js'));
  const policies = {};
  for (const s of readPacks(bundledPackNames(PACKS_DIR))) if (!isResponseRule(s.sentence)) Object.assign(policies, cedarPolicies([compileRule(s.sentence, s.id, s.source, s.enforcement)]));
  const recorded = writePrevalidatedPolicies(PREVALIDATED_FILE, WARDEN_CEDAR_SCHEMA, policies, (set) => {
    const answer = cedar.validate({ schema: WARDEN_CEDAR_SCHEMA, policies: { staticPolicies: set }, validationSettings: { mode: 'strict' } });
    if (answer.type === 'failure') return new Set(Object.keys(set));
    return new Set(answer.validationErrors.map((e) => e.policyId));
  });
  log(`validated ${recorded} Cedar polic${recorded === 1 ? 'y' : 'ies'} of the bundled packs`);

  const bundlesStarted = Date.now();
  // The compiled modules build the bundles: the same code a worker from this build runs.
  const { prebuildWorkflowBundles, PREBUILT_BUNDLE_DIR } = require(join(OUT, 'worker', 'workflow-bundle.js'));
  const { WORKFLOW_INTERCEPTOR_MODULES } = require(join(OUT, 'telemetry', 'temporal-interceptors.js'));
  prebuildWorkflowBundles(PREBUILT_BUNDLE_DIR, [[], WORKFLOW_INTERCEPTOR_MODULES]).then(
    (files) => {
      log(`pre-built ${files.length} workflow bundle(s) in ${((Date.now() - bundlesStarted) / 1000).toFixed(1)}s`);
      const stamp = join(OUT, 'BUILD_STAMP');
      writeFileSync(stamp, `${new Date().toISOString()}\n`);
      // The stamp's time is when the build started: a source saved while it compiled (after tsc
      // read it) is newer than the stamp, so bin/warden.js sees the build as stale, not fresh.
      utimesSync(stamp, new Date(started), new Date(started));
      log(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    },
    (error) => {
      process.stderr.write(`warden build: ${error && error.message ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

main();
