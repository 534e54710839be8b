/**
 * The workflow bundle preloads modules once per workflow thread (workflows/shared-modules.ts,
 * worker/workflow-bundle.ts `PRELOADED_MODULES`): the SDK then shares them across every workflow
 * run of the thread and deep-freezes them. Held here on the SDK's own reusable V8 context built
 * from the real bundle:
 * - the SHA-256 code is shared, frozen, and still digests right, run after run (its module-level
 *   scratch buffer is written on every digest);
 * - the class an attacker found (zod, preloaded, made `z.email()`, `z.guid()`, `z.ipv4()`... throw in every run): nothing
 *   shared holds a RegExp (frozen, its `lastIndex` is read-only, and zod, like any code running a
 *   global or sticky pattern, writes it before every test: a workflow task that throws forever),
 *   and zod is not shared at all (its registry of schema ids would be common to every run);
 * - what `sharedOnce` holds (Warden's schemas, built once per thread by the first run's own zod):
 *   later runs get the same object and parse with it exactly as a fresh build does, zod formats
 *   included, before and after a run is evicted; no run's data reaches another through it
 *   (nothing a parse is given stays reachable from the schema, no parse hands out an object
 *   another parse also gets); zod's error class still answers `instanceof` across runs;
 * - the class issue 17 measured (a run's module evaluation was mostly Warden's schemas built
 *   afresh): after the first run on a thread, no module of Warden's a run evaluates exports a zod
 *   schema that run built.
 */
import { runInContext, type Context } from 'node:vm';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
// The SDK's reusable-context creator (what every worker runs workflows in), used directly: no public entry point.
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workflowBundle } from '../../worker/workflow-bundle';
import { TaskSchema } from '../../task/task-schema';
import { AgentTaskInputSchema } from '../../task/task-run';
import { sharedOnce } from '../../workflows/shared-modules';
import { PolicyRequestSchema } from '../../policies/engine/policy-request';
import { ToolDefinitionSchema } from '../../tools/tool-descriptor';
import { McpServerSchema } from '../../mcp/mcp-server-config';
import { AttestationConfigSchema } from '../../attestation/attestation-config';

const SHA256 = './node_modules/@noble/hashes/esm/sha256.js';
const UTILS = './node_modules/@noble/hashes/esm/utils.js';
const SHARED = './workflows/shared-modules.ts';
const TASK_SCHEMA = './task/task-schema.ts';
const TASK_RUN = './task/task-run.ts';
const POLICY_REQUEST = './policies/engine/policy-request.ts';
// zod as the bundle's stand-in loads it (workflows/lazy-zod.ts: `require('zod/v4')`, its CommonJS build).
const ZOD = './node_modules/zod/v4/classic/schemas.cjs';
const ZOD_ERRORS = './node_modules/zod/v4/classic/errors.cjs';
const ZOD_ISO = './node_modules/zod/v4/classic/iso.cjs';
const LAZY_ZOD = './workflows/lazy-zod.ts';

/**
 * Source of an expression that evaluates `body` (a function of `req`, webpack's module lookup) as
 * one workflow run does: a module cache of its own (the SDK's activator holds it), the workflow
 * module graph evaluated afresh in it, and the globals it made dropped afterwards (the SDK swaps
 * each run's globals out). A run's result crosses back as JSON.
 */
function inRun(body: string): string {
  return `(() => {
    const before = new Set(Reflect.ownKeys(globalThis));
    globalThis.__TEMPORAL_ACTIVATOR__ = { moduleCache: new Map() };
    try {
      __TEMPORAL__.importWorkflows();
      // A run evaluates zod only once it reads it (workflows/lazy-zod.ts): a test that asks for a zod module reads it first.
      const req = (id) => {
        if (__webpack_module_cache__[id] === undefined && id.startsWith('./node_modules/zod/')) void __webpack_module_cache__[${JSON.stringify(LAZY_ZOD)}].exports.z.string;
        return __webpack_module_cache__[id].exports;
      };
      return JSON.stringify((${body})(req));
    } finally {
      for (const key of Reflect.ownKeys(globalThis)) if (!before.has(key)) delete globalThis[key];
    }
  })()`;
}

/** Every string reachable from `root` (own properties, Map and Set entries, prototypes), as one JSON-safe list. */
const REACHABLE_STRINGS = `(root) => {
  const seen = new Set();
  const strings = [];
  const visit = (value) => {
    if (typeof value === 'string') { strings.push(value); return; }
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return;
    seen.add(value);
    if (value instanceof Map) for (const [k, v] of value) { visit(k); visit(v); }
    if (value instanceof Set) for (const v of value) visit(v);
    for (const key of Reflect.ownKeys(value)) {
      const d = Object.getOwnPropertyDescriptor(value, key);
      if (d && 'value' in d) visit(d.value);
    }
    visit(Object.getPrototypeOf(value));
  };
  visit(root);
  return strings;
}`;

/** Pushes into every array and adds a key to every object reachable from `value` (what a careless run could do to its parse). */
function scribble(value: unknown, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  for (const child of Object.values(value)) scribble(child, seen);
  if (Array.isArray(value)) value.push('scribbled');
  else (value as Record<string, unknown>)['scribbled'] = 'scribbled';
}

const HELLO = parseYaml(readFileSync(join(__dirname, '../../examples/hello.yaml'), 'utf8')) as Record<string, unknown>;
/** The smallest task: every other field from its default. */
const MINIMAL = { user: 'alice', intent: 'say hello', agent: { name: 'scribe', model: { driver: 'scripted', script: [{ final: 'hello' }] } } };

/** The smallest policy request: `resources` from its default (an object of arrays). */
const MINIMAL_REQUEST = { tool: 'fs.read', agent: { name: 'scribe', depth: 0 }, now: '2026-12-01T00:00:00Z' };

/** FIPS 180-4 test vectors (NIST CSHA examples): message, SHA-256 in hex. */
const VECTORS: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
];

describe('modules preloaded once per workflow thread', () => {
  let creator: ReusableVMWorkflowCreator;
  let context: Context;
  /** Every module id in the bundle (webpack's module map keys). */
  let moduleIds: string[];
  /** Every `sharedOnce` key written in the bundle's code. */
  let sharedKeys: string[];

  beforeAll(async () => {
    const bundle: WorkflowBundleWithSourceMap = await workflowBundle();
    moduleIds = [...new Set([...bundle.code.matchAll(/^\/\*\*\*\/ "(\.\/[^"\n]+)"$/gm)].map((m) => m[1] as string))];
    sharedKeys = [...new Set([...bundle.code.matchAll(/sharedOnce\)?\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1] as string))];
    // As Worker.create does: the source map is inline in the code.
    creator = await ReusableVMWorkflowCreator.create(parseWorkflowCode(bundle.code), 30_000, new Set(), undefined as never);
    // Protected in the SDK's types: the context every workflow run of the thread executes in.
    context = (creator as unknown as { context: Context }).context;
  }, 300_000);

  afterAll(async () => {
    await creator?.destroy();
  });

  it('shares the SHA-256 code across runs, frozen, and it digests the FIPS 180-4 vectors, twice over', () => {
    expect(runInContext(`Object.isFrozen(__webpack_module_cache__[${JSON.stringify(SHA256)}].exports)`, context)).toBe(true);
    const digests = runInContext(
      `(() => {
        const { sha256 } = __webpack_module_cache__[${JSON.stringify(SHA256)}].exports;
        const { bytesToHex, utf8ToBytes } = __webpack_module_cache__[${JSON.stringify(UTILS)}].exports;
        const messages = ${JSON.stringify(VECTORS.map(([m]) => m))};
        return [...messages, ...messages].map((m) => bytesToHex(sha256(utf8ToBytes(m))));
      })()`,
      context,
    ) as string[];
    const expected = VECTORS.map(([, digest]) => digest);
    expect(digests).toEqual([...expected, ...expected]);
  });

  it('shares no RegExp and no zod module: what is frozen is never written', () => {
    // Every module the preload evaluated (the shared cache answers only for those outside a run),
    // and every object reachable from its exports.
    expect(moduleIds.length).toBeGreaterThan(100);
    const found = JSON.parse(
      runInContext(
        `(() => {
          const ids = ${JSON.stringify(moduleIds)}.filter((id) => __webpack_module_cache__[id] !== undefined);
          const regexps = [];
          const seen = new Set();
          const visit = (value, path) => {
            if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return;
            seen.add(value);
            if (value instanceof RegExp) regexps.push(path);
            for (const key of Reflect.ownKeys(value)) {
              const d = Object.getOwnPropertyDescriptor(value, key);
              if (d && 'value' in d) visit(d.value, path + '.' + String(key));
            }
            visit(Object.getPrototypeOf(value), path + '.[[Prototype]]');
          };
          for (const id of ids) visit(__webpack_module_cache__[id].exports, id);
          return JSON.stringify({ ids, regexps });
        })()`,
        context,
      ) as string,
    ) as { ids: string[]; regexps: string[] };
    expect(found.ids).toContain(SHA256);
    expect(found.ids.filter((id) => id.includes('/zod/'))).toEqual([]);
    expect(found.regexps).toEqual([]);
  });

  it('shares the task schemas across runs, built by the first run, and every run parses with them as a fresh build does', () => {
    const expected = JSON.parse(JSON.stringify([TaskSchema.parse(HELLO), TaskSchema.parse(MINIMAL), TaskSchema.safeParse({ ...MINIMAL, user: '' }).success]));
    const body = `(req) => {
      const { TaskSchema } = req(${JSON.stringify(TASK_SCHEMA)});
      const z = req(${JSON.stringify(ZOD)});
      const bad = TaskSchema.safeParse({ ...${JSON.stringify(MINIMAL)}, user: '' });
      return {
        // each run evaluates zod afresh: only the run that built the schema has its class
        builtByThisRun: TaskSchema.constructor === z.ZodObject || req(${JSON.stringify(TASK_RUN)}).AgentTaskInputSchema.constructor === z.ZodObject,
        parsedInput: req(${JSON.stringify(TASK_RUN)}).AgentTaskInputSchema.parse({ task: ${JSON.stringify(MINIMAL)} }),
        // yet this run's zod error class still recognises the error the shared schema gives
        errorIsZodError: bad.error instanceof req(${JSON.stringify(ZOD_ERRORS)}).ZodError,
        parsed: [TaskSchema.parse(${JSON.stringify(HELLO)}), TaskSchema.parse(${JSON.stringify(MINIMAL)}), bad.success],
      };
    }`;
    // the first run on the thread builds, the later ones (a run evicted and the next started) reuse
    const runs = [0, 1, 2, 3].map(() => JSON.parse(runInContext(inRun(body), context) as string) as unknown);
    const parsedInput = JSON.parse(JSON.stringify(AgentTaskInputSchema.parse({ task: MINIMAL })));
    expect(runs).toEqual([true, false, false, false].map((builtByThisRun) => ({ builtByThisRun, errorIsZodError: true, parsed: expected, parsedInput })));
  });

  it('evaluates zod in no later run: a run that builds no schema never reads it, so its start leaves zod out (issue 17)', () => {
    // The run's own module cache (the SDK's proxy in front of it lists nothing).
    const body = `() => [...globalThis.__TEMPORAL_ACTIVATOR__.moduleCache.keys()].filter((id) => id.startsWith('./node_modules/zod/'))`;
    const runs = [0, 1, 2].map(() => JSON.parse(runInContext(inRun(body), context) as string) as string[]);
    // The thread's first run may build the shared schemas (earlier tests in this file may have): the later ones must not touch zod.
    expect(runs.slice(1)).toEqual([[], []]);
    // Still the real zod, the same API, once a run does read it.
    const read = `() => { const { z } = __webpack_module_cache__[${JSON.stringify(LAZY_ZOD)}].exports; return [typeof z.object, z.string().safeParse(1).success, z.number().parse(2), 'object' in z, Object.keys(z).includes('strictObject')]; }`;
    expect(JSON.parse(runInContext(inRun(read), context) as string)).toEqual(['function', false, 2, true, true]);
  });

  it('builds no schema of Warden\'s own in a later run: every schema a Warden module exports is one the thread built once', () => {
    // Warden's modules (not a package's) whose exports a run reads: every one the workflows import.
    const wardenIds = moduleIds.filter((id) => !id.startsWith('./node_modules/') && id !== SHARED);
    const body = `(req) => {
      // zod's classes answer \`instanceof\` by trait across copies of zod: ask for this run's class itself
      const classes = new Set(Object.values(req(${JSON.stringify(ZOD)})).filter((v) => typeof v === 'function'));
      const ids = ${JSON.stringify(wardenIds)}.filter((id) => __webpack_module_cache__[id] !== undefined);
      const builtByThisRun = [];
      for (const id of ids) {
        const exports = __webpack_module_cache__[id].exports;
        for (const key of Object.keys(exports)) {
          const value = exports[key];
          if (value !== null && typeof value === 'object' && classes.has(value.constructor)) builtByThisRun.push(id + ' ' + key);
        }
      }
      return { evaluated: ids.length, builtByThisRun };
    }`;
    // the first run on the thread (or the first since the test before) may build; none after it
    runInContext(inRun(body), context);
    for (let run = 0; run < 2; run++) {
      const { evaluated, builtByThisRun } = JSON.parse(runInContext(inRun(body), context) as string) as { evaluated: number; builtByThisRun: string[] };
      expect(evaluated).toBeGreaterThan(50);
      expect(builtByThisRun).toEqual([]);
    }
  });

  it('lets no run see another run\'s data through the shared schemas', () => {
    const SECRET = 'run-A-secret-4f1c2b';
    const secretTask = { ...HELLO, user: SECRET, intent: `${SECRET} intent`, limits: { ...(HELLO['limits'] as object), deadline: '7m' } };
    // run A parses its data and scribbles on everything the parse gave it (defaults included)
    runInContext(
      inRun(`(req) => {
        const { TaskSchema } = req(${JSON.stringify(TASK_SCHEMA)});
        const scribble = ${scribble.toString()};
        scribble(TaskSchema.parse(${JSON.stringify(secretTask)}));
        scribble(TaskSchema.parse(${JSON.stringify(MINIMAL)}));
        scribble(req(${JSON.stringify(TASK_RUN)}).AgentTaskInputSchema.parse({ task: ${JSON.stringify(secretTask)}, lineage: [${JSON.stringify(SECRET)}] }));
        scribble(req(${JSON.stringify(POLICY_REQUEST)}).PolicyRequestSchema.parse({ ...${JSON.stringify(MINIMAL_REQUEST)}, args: { to: ${JSON.stringify(SECRET)} } }));
        scribble(req(${JSON.stringify(POLICY_REQUEST)}).PolicyRequestSchema.parse(${JSON.stringify(MINIMAL_REQUEST)}));
        TaskSchema.safeParse({ user: ${JSON.stringify(SECRET)} });
        return null;
      }`),
      context,
    );
    // run B: nothing of A's reachable from the shared schema, and its parse is what a fresh build gives
    const out = JSON.parse(
      runInContext(
        inRun(`(req) => {
          const { TaskSchema } = req(${JSON.stringify(TASK_SCHEMA)});
          const built = (key) => req(${JSON.stringify(SHARED)}).sharedOnce(key, () => { throw new Error('not built yet'); });
          const strings = (${REACHABLE_STRINGS})(${JSON.stringify(sharedKeys)}.flatMap((key) => { try { return [built(key)]; } catch { return []; } }));
          return { leaked: strings.filter((s) => s.includes(${JSON.stringify(SECRET)}) || s === 'scribbled'), minimal: TaskSchema.parse(${JSON.stringify(MINIMAL)}), request: req(${JSON.stringify(POLICY_REQUEST)}).PolicyRequestSchema.parse(${JSON.stringify(MINIMAL_REQUEST)}) };
        }`),
        context,
      ) as string,
    ) as { leaked: string[]; minimal: unknown; request: unknown };
    expect(sharedKeys).toEqual(expect.arrayContaining(['task/task-schema', 'task/task-run', 'policies/engine/policy-request', 'tools/tool-descriptor']));
    expect(out.leaked).toEqual([]);
    expect(out.minimal).toEqual(JSON.parse(JSON.stringify(TaskSchema.parse(MINIMAL))));
    expect(out.request).toEqual(JSON.parse(JSON.stringify(PolicyRequestSchema.parse(MINIMAL_REQUEST))));
  });

  it('keeps zod formats working in a schema sharedOnce holds, run after run and after a run is evicted', () => {
    const VALUES = ['alice@example.com', '123e4567-e89b-12d3-a456-426614174000', '10.0.0.1', '2026-12-01', 'https://example.com/x'];
    const body = `(req) => {
      const z = req(${JSON.stringify(ZOD)});
      const schema = req(${JSON.stringify(SHARED)}).sharedOnce('test/formats', () => z.tuple([z.email(), z.uuid(), z.ipv4(), req(${JSON.stringify(ZOD_ISO)}).date(), z.url()]));
      return [schema.safeParse(${JSON.stringify(VALUES)}).success, schema.safeParse(['x', 'y', 'z', 'w', 'v']).error?.issues.length];
    }`;
    for (let run = 0; run < 4; run++) expect(JSON.parse(runInContext(inRun(body), context) as string)).toEqual([true, 5]);
  });

  it.each([
    ['task, smallest', TaskSchema, MINIMAL],
    ['task, hello.yaml', TaskSchema, HELLO],
    // `resources` defaults to an object of arrays: zod copies an object default only shallowly
    ['policy request, smallest', PolicyRequestSchema, MINIMAL_REQUEST],
    ['tool definition, smallest', ToolDefinitionSchema, { name: 'echo', description: 'echoes', executor: { kind: 'isolate', source: 'return input' } }],
    ['MCP server, smallest', McpServerSchema, { command: 'mcp-server' }],
    ['attestation, empty', AttestationConfigSchema, {}],
  ] as const)('shares nothing mutable through a parse: a second parse is unchanged by scribbling on the first (%s, every default)', (_name, schema, input) => {
    const before = JSON.parse(JSON.stringify((schema as z.ZodType).parse(input)));
    scribble((schema as z.ZodType).parse(structuredClone(input)));
    expect((schema as z.ZodType).parse(input)).toEqual(before);
  });

  it('builds a value once per key, and not at all when the build throws', () => {
    let builds = 0;
    const key = `test/once-${Math.random()}`;
    expect(() => sharedOnce(key, () => { builds++; throw new Error('no'); })).toThrow('no');
    const a = sharedOnce(key, () => ({ n: ++builds }));
    expect(sharedOnce(key, () => ({ n: ++builds }))).toBe(a);
    expect(builds).toBe(2);
  });
});
