/**
 * The workflow bundle, built once per code version. Bundling takes seconds on a small machine, so
 * a bundle is cached under the state folder keyed by a hash of every source file it can contain
 * and the SDK version; any edit to workflow code produces a new bundle.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const PROJECT_ROOT = join(__dirname, '..');
/** Folders whose files a workflow may import (directly or transitively). */
const WORKFLOW_SOURCE_DIRS = ['workflows', 'permissions', 'task', 'recovery'];
const WORKFLOW_SOURCE_FILES = ['errors.ts'];

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

async function sourceFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  const sdk = JSON.parse(await readFile(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string };
  hash.update(`sdk:${sdk.version}\n`);
  const files = [...WORKFLOW_SOURCE_FILES];
  for (const dir of WORKFLOW_SOURCE_DIRS) {
    for (const entry of (await readdir(join(PROJECT_ROOT, dir))).sort()) {
      if (entry.endsWith('.ts')) files.push(join(dir, entry));
    }
  }
  for (const file of files) {
    hash.update(`${file}\n`);
    hash.update(await readFile(join(PROJECT_ROOT, file)));
  }
  return hash.digest('hex').slice(0, 24);
}

let memo: Promise<WorkflowBundleWithSourceMap> | undefined;

async function buildOrLoad(cacheDir: string | undefined): Promise<WorkflowBundleWithSourceMap> {
  const fingerprint = cacheDir === undefined ? undefined : await sourceFingerprint();
  const cacheFile = cacheDir === undefined ? undefined : join(cacheDir, `workflow-bundle-${fingerprint}.json`);
  if (cacheFile !== undefined) {
    try {
      return JSON.parse(await readFile(cacheFile, 'utf8')) as WorkflowBundleWithSourceMap;
    } catch {
      // not cached yet (or unreadable): build below
    }
  }
  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silentLogger });
  if (cacheFile !== undefined && cacheDir !== undefined) {
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${cacheFile}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(bundle));
    await rename(tmp, cacheFile);
  }
  return bundle;
}

/** The workflow bundle for this code; `cacheDir` enables the on-disk cache. */
export function workflowBundle(cacheDir?: string): Promise<WorkflowBundleWithSourceMap> {
  memo ??= buildOrLoad(cacheDir).catch((error: unknown) => {
    memo = undefined;
    throw error;
  });
  return memo;
}

const noop = () => undefined;
const silentLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
