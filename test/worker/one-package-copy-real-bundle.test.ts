/**
 * The real workflow bundle holds one copy of each package version npm installed several times
 * where the copies resolve alike (worker/workflow-bundle.ts `OnePackageCopy`): in this install,
 * @opentelemetry/semantic-conventions 1.28.0 under core, resources and sdk-trace-base (constant
 * tables every workflow run would evaluate once per copy). test/worker/one-package-copy.test.ts
 * holds the trees where copies must stay apart.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';
import { buildWorkflowBundle } from '../../worker/workflow-bundle';
import { REPO_ROOT } from '../support/warden-test-env';

const NAME = '@opentelemetry/semantic-conventions';
const HOLDERS = ['core', 'resources', 'sdk-trace-base'];

it(`bundles one copy of ${NAME} where npm installed it several times at one version`, async () => {
  const copies = HOLDERS.map((holder) => `@opentelemetry/${holder}/node_modules/${NAME}`).filter((path) => existsSync(join(REPO_ROOT, 'node_modules', path, 'package.json')));
  const versions = copies.map((path) => (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', path, 'package.json'), 'utf8')) as { version: string }).version);
  // The install this test is about: several nested copies of one version (else it proves nothing).
  expect(copies.length).toBeGreaterThan(1);
  expect(new Set(versions).size).toBe(1);
  // The traced variant: the OpenTelemetry interceptors bring the package in.
  const { code } = await buildWorkflowBundle(WORKFLOW_INTERCEPTOR_MODULES);
  const bundled = copies.filter((path) => code.includes(`node_modules/${path}/`));
  expect(bundled.length).toBe(1);
}, 300_000);
