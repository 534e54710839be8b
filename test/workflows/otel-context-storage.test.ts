/**
 * The workflow-side OpenTelemetry context manager (workflows/otel-context-manager.ts, what the bundle
 * resolves the SDK's `context-manager` module to) keeps the active span context of every run on a
 * workflow thread in one AsyncLocalStorage. Held on the SDK's own reusable V8 context built from the
 * real bundle with Warden's workflow interceptors, each run with its own module cache as the SDK
 * gives it:
 * - the class issue 17 measured: each run's manager enabled a storage of its own, and Node runs every
 *   enabled storage's propagation on every promise of the thread, so a promise cost more the more
 *   tasks ran at once; now however many runs make spans, one storage is enabled;
 * - what sharing must not change: a context set with `with` reaches the promises made under it (after
 *   an await too), and no other run's code, before or after; a run disposed (its manager disabled, as
 *   the SDK's interceptor does) leaves the others' contexts working.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
// The SDK's reusable-context creator (what every worker runs workflows in), used directly: no public entry point.
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTEL_CONTEXT_MANAGER_ALIAS, otelContextManagerAlias, workflowBundle } from '../../worker/workflow-bundle';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../telemetry/temporal-interceptors';

const OTEL_WORKFLOW_INDEX = './node_modules/@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
const OTEL_API = './node_modules/@opentelemetry/api/build/esm/index.js';

describe('the workflow threads\' span context storage', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;
  /** The module id the SDK's OpenTelemetry workflow interceptors take their ContextManager from. */
  let managerModule: string;
  /** Storages enabled while the test ran (Node's AsyncLocalStorage: the sandbox's class extends it). */
  const enabled = new Set<unknown>();
  const proto = AsyncLocalStorage.prototype as unknown as { _enable(): void };
  const enable = proto._enable;

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle(undefined, { workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES] });
    const index = bundle.code.indexOf(`/***/ "${OTEL_WORKFLOW_INDEX}"`);
    expect(index).toBeGreaterThan(0);
    const required = /__webpack_require__\(\/\*! \.\/context-manager \*\/ "([^"]+)"\)/.exec(bundle.code.slice(index));
    expect(required).not.toBeNull();
    managerModule = required![1] as string;
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    context = (creator as unknown as { context: Context }).context;
    proto._enable = function (this: unknown) {
      enabled.add(this);
      return enable.call(this);
    };
  }, 300_000);

  afterAll(async () => {
    proto._enable = enable;
    await creator?.destroy();
  });

  /**
   * Evaluates `body` (a function of `holder`) as one workflow run does: a module cache of its
   * own (the SDK's activator holds it). `holder` outlives the run: what a promise resolves later is
   * read from it by a later call, after the context drained its microtasks.
   */
  function inRun(run: string, body: string): unknown {
    return runInContext(
      `(() => {
        globalThis.__holder ??= {};
        const holder = (globalThis.__holder[${JSON.stringify(run)}] ??= { moduleCache: new Map() });
        globalThis.__TEMPORAL_ACTIVATOR__ = { moduleCache: holder.moduleCache, workflowSandboxDestructors: [], info: { runId: ${JSON.stringify(run)} }, promiseStackStore: { childToParent: new Map(), promiseToStack: new Map() } };
        try {
          return (${body})(holder);
        } finally {
          delete globalThis.__TEMPORAL_ACTIVATOR__;
        }
      })()`,
      context,
    );
  }

  it('however many runs make spans, one storage is enabled, and each run\'s context reaches only its own promises', () => {
    const runs = ['a', 'b', 'c', 'd', 'e'];
    const before = enabled.size;
    for (const run of runs) {
      inRun(
        run,
        `(holder) => {
          __TEMPORAL__.importWorkflows();
          __TEMPORAL__.importInterceptors();
          const otel = __webpack_module_cache__[${JSON.stringify(OTEL_API)}].exports;
          const { ContextManager } = __webpack_module_cache__[${JSON.stringify(managerModule)}].exports;
          const manager = (holder.manager = new ContextManager());
          const key = (holder.key = otel.createContextKey('run'));
          holder.outside = manager.active() === otel.ROOT_CONTEXT;
          manager.with(otel.ROOT_CONTEXT.setValue(key, ${JSON.stringify(run)}), () => {
            holder.inside = manager.active().getValue(key);
            holder.later = Promise.resolve().then(async () => {
              await null;
              return manager.active().getValue(key);
            }).then((value) => (holder.afterAwait = value));
          });
          holder.after = manager.active().getValue(key) ?? null;
        }`,
      );
    }
    expect(enabled.size - before).toBe(1);
    const seen = runs.map((run) => inRun(run, `(holder) => [holder.outside, holder.inside, holder.after, holder.afterAwait]`));
    expect(seen).toEqual(runs.map((run) => [true, run, null, run]));
  });

  it('a run disposed (its manager disabled) leaves the other runs\' contexts working', () => {
    inRun('a', `(holder) => void holder.manager.disable()`);
    inRun(
      'b',
      `(holder) => {
        const otel = __webpack_module_cache__[${JSON.stringify(OTEL_API)}].exports;
        holder.afterDispose = undefined;
        holder.manager.with(otel.ROOT_CONTEXT.setValue(holder.key, 'b again'), () => {
          Promise.resolve().then(() => (holder.afterDispose = holder.manager.active().getValue(holder.key)));
        });
      }`,
    );
    expect(inRun('b', `(holder) => holder.afterDispose`)).toBe('b again');
  });
});

describe('the replacement follows one version of the SDK\'s context manager', () => {
  const sdkFile = realpathSync(require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow/context-manager'));

  it('the installed SDK\'s file is the one followed, so the bundle takes the shared storage (an SDK update that changes it fails here: re-check otel-context-manager.ts, then the digest)', () => {
    expect(Object.values(otelContextManagerAlias(sdkFile))).toEqual([expect.stringMatching(/workflows[\\/]otel-context-manager\.(ts|js)$/)]);
    expect(OTEL_CONTEXT_MANAGER_ALIAS).toEqual(otelContextManagerAlias(sdkFile));
  });

  it('a context manager file that differs by one byte is not replaced: the bundle keeps the SDK\'s own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-otel-cm-'));
    try {
      const changed = join(dir, 'context-manager.js');
      writeFileSync(changed, `${readFileSync(sdkFile, 'utf8')} `);
      expect(otelContextManagerAlias(changed)).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
