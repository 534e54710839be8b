/**
 * What loading `warden run` costs is part of its start-up (issue 17: `warden run` adds under 1 s
 * to the task itself). Its command module loads what the run needs before the task starts: the
 * task check, the Temporal client, the client's custody trace. Worker-side code, the OS
 * sandbox's runtime, JSON-Schema compilation for tasks without tool schemas, the YAML parser for
 * a JSON task file, and the summary's formatting (loaded while the worker runs the first step)
 * stay out until used.
 *
 * Each case loads the module in a fresh Node process (through tsx, so the sources are what is
 * measured, whatever the state of build/) and reads `require.cache`.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

/** Files (relative to the repository, `/`-separated) that `require(module)` loaded, in a fresh process. */
function loadedBy(module: string, then = ''): string[] {
  const out = execFileSync(
    process.execPath,
    [
      '--require',
      'tsx/cjs',
      '-e',
      `require(${JSON.stringify(join(REPO_ROOT, module))});${then}` +
        `process.stdout.write(JSON.stringify(Object.keys(require.cache).map((f) => f.slice(${JSON.stringify(REPO_ROOT.length + 1)}))))`,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 5 * 60_000 },
  );
  return JSON.parse(out) as string[];
}

/** Modules a `warden run` that starts a task has no use for before the task starts. */
const NOT_BEFORE_THE_START: Array<[what: string, pattern: RegExp]> = [
  ['the Temporal worker SDK', /^node_modules\/@temporalio\/worker\//],
  ['the worker factory', /^worker\/create-warden-worker\./],
  ['the workflow bundle', /^workflows\/agent-task\./],
  ['ajv (only a task with tool schemas compiles one)', /^node_modules\/ajv\//],
  ['the JWT library (jose: the worker mints and verifies credentials)', /^node_modules\/jose\//],
  ['the OS sandbox runtime', /^sandbox\/os\/(sandboxed-process|egress-proxy|os-sandbox-spec|resource-limits)\./],
  ['the summary formatting', /^cli\/format-summary\./],
  ['cedar-wasm', /cedar-wasm/],
  ['the yaml package (only a YAML task file needs it)', /^node_modules\/yaml\//],
  ['the OTLP exporters', /^node_modules\/@opentelemetry\/exporter-/],
  // Its index is a table of every stable name (~50 ms to load); Warden keeps the few it sets as constants (custody/attributes.ts).
  ['the semantic-conventions package (top-level copy)', /^node_modules\/@opentelemetry\/semantic-conventions\//],
];

describe('loading `warden run`', () => {
  const loaded = loadedBy('cli/commands/run.ts');

  it('loads the client side it needs', () => {
    // The probe itself must see modules, or every "not loaded" below would pass vacuously.
    expect(loaded.some((file) => file.startsWith('node_modules/@temporalio/client/'))).toBe(true);
    expect(loaded.some((file) => file.startsWith('task/load-task-file.'))).toBe(true);
    expect(loaded.some((file) => file.startsWith('telemetry/setup-telemetry.'))).toBe(true);
  });

  it.each(NOT_BEFORE_THE_START)('does not load %s', (_what, pattern) => {
    expect(loaded.filter((file) => pattern.test(file))).toEqual([]);
  });

  it('yaml loads with the first YAML task file, not for a JSON one, and still refuses a bad one', () => {
    const load = JSON.stringify(join(REPO_ROOT, 'task/load-task-file.ts'));
    const after = (check: string) => loadedBy('task/load-task-file.ts', `const { parseTaskText } = require(${load}); ${check}`).some((file) => file.startsWith('node_modules/yaml/'));
    expect(after(`if (parseTaskText('{"user": "u"}', 't.json').user !== 'u') throw new Error('JSON not read');`)).toBe(false);
    expect(after(`if (parseTaskText('user: u', 't.yaml').user !== 'u') throw new Error('YAML not read');`)).toBe(true);
    expect(after(`let code; try { parseTaskText('user: !!js/function x', 't.yaml'); } catch (e) { code = e.code; } if (code !== 'ERR_TASK_FILE_INVALID') throw new Error('tag accepted: ' + code);`)).toBe(true);
  });

  it('ajv loads when a tool schema is compiled, and still refuses a bad one', () => {
    const after = loadedBy(
      'tools/tool-input-validator.ts',
      `const v = require(${JSON.stringify(join(REPO_ROOT, 'tools/tool-input-validator.ts'))});` +
        `if (v.validateToolInput({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }, {}).length !== 1) throw new Error('missing n not reported');` +
        `let refused = false; try { v.compileToolSchema({ type: 'nonsense' }); } catch { refused = true; } if (!refused) throw new Error('bad schema accepted');`,
    );
    expect(after.some((file) => file.startsWith('node_modules/ajv/'))).toBe(true);
  });
});
