/**
 * Warden as something one installs and builds on: the project is packed (`npm pack`), the
 * tarball installed into a scratch project (`npm install <tarball>`), and then, from that
 * project only: its `warden --version`; a standalone `warden worker`; a TypeScript program that
 * imports `warden`, compiled by a strict `tsc` (library types checked too) and run with plain
 * Node, which starts a task on that worker and prints the result; and `warden run --worker`,
 * whose in-process worker loads the pre-built workflow bundle (no webpack in node_modules).
 *
 * Native modules (isolated-vm, better-sqlite3) are not compiled again here: the tarball is
 * installed with `--ignore-scripts` and the scratch project gets this checkout's compiled
 * binaries of the very same versions (pinned with `overrides`). Compiling them is npm's and
 * node-gyp's job, minutes of CPU this suite does not spend; everything of Warden's runs from the
 * tarball.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { collectOutput, exitOf, waitForOutput } from '../support/child-output';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const run = promisify(execFile);
const NATIVE = ['isolated-vm', 'better-sqlite3'];

/** True when some source or data file changed after the last build (what bin/warden.js checks too). */
function buildIsStale(): boolean {
  const stamp = join(REPO_ROOT, 'build', 'BUILD_STAMP');
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  const { include } = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  const changed = (path: string): boolean => {
    const info = statSync(path);
    if (!info.isDirectory()) return extname(path) !== '.md' && info.mtimeMs > built;
    return readdirSync(path).some((entry) => changed(join(path, entry)));
  };
  return include.some((entry) => existsSync(join(REPO_ROOT, entry)) && changed(join(REPO_ROOT, entry)));
}

function versionOf(pkg: string): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

let scratch: string;
let tarball: string;
let packedFiles: string[];
const log = (title: string, text: string) => console.log(`--- ${title} ---\n${text.trimEnd()}\n`);

beforeAll(async () => {
  if (buildIsStale()) await run(process.execPath, [join(REPO_ROOT, 'scripts/build.js')], { cwd: REPO_ROOT, env: { ...process.env, WARDEN_BUILD_QUIET: '1' } });
  const packDir = await mkdtemp(join(tmpdir(), 'warden-pack-'));
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[]; size: number; unpackedSize: number }[];
  tarball = join(packDir, packed!.filename);
  packedFiles = packed!.files.map((f) => f.path);
  log('npm pack', `${packed!.filename}: ${packedFiles.length} files, ${(packed!.size / 1024 / 1024).toFixed(1)} MB packed, ${(packed!.unpackedSize / 1024 / 1024).toFixed(1)} MB unpacked`);

  scratch = await mkdtemp(join(tmpdir(), 'warden-consumer-'));
  await writeFile(
    join(scratch, 'package.json'),
    `${JSON.stringify({ name: 'warden-consumer', version: '1.0.0', private: true, overrides: Object.fromEntries(NATIVE.map((p) => [p, versionOf(p)])) }, null, 2)}\n`,
  );
  const install = await run('npm', ['install', tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: scratch, maxBuffer: 16 * 1024 * 1024 });
  log('npm install <tarball>', install.stdout);
  for (const pkg of NATIVE) {
    expect(versionOf(pkg)).toBe((JSON.parse(readFileSync(join(scratch, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version);
    for (const built of ['out', 'build']) {
      const from = join(REPO_ROOT, 'node_modules', pkg, built);
      if (existsSync(from)) cpSync(from, join(scratch, 'node_modules', pkg, built), { recursive: true });
    }
  }
}, 900_000);

describe('the npm package', () => {
  it('carries the compiled code, its types, the data and scripts it reads and the pre-built workflow bundles, and nothing else', () => {
    for (const file of ['package.json', 'README.md', 'bin/warden.js', 'build/index.js', 'build/index.d.ts', 'build/cli/main.js', 'build/workflow-bundles/plain.json', 'build/policies/foundation/rules.txt', 'build/policies/engine/warden.cedarschema', 'build/policies/engine/cedar-prevalidated.json', 'build/sandbox/os/scripts/launch-sandbox.sh', 'build/BUILD_STAMP']) {
      expect(packedFiles, file).toContain(file);
    }
    const foreign = packedFiles.filter((f) => !/^(package\.json|README\.md|bin\/warden\.js|build\/.+)$/.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || /(^|\/)(test|bench|history-files|ALLOW|DENY|APPROVAL)\//.test(f));
    expect(foreign).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(scratch, 'node_modules', 'warden', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ main: 'build/index.js', types: 'build/index.d.ts', bin: { warden: 'bin/warden.js' } });
    // Types the public declarations need, down to the SDK's own (@temporalio/common refers to 'ms').
    expect(Object.keys(manifest['dependencies'] as object)).toEqual(expect.arrayContaining(['@types/node', '@types/better-sqlite3', '@types/ms']));
    expect(Object.keys(manifest['dependencies'] as object)).not.toContain('tsx');
  });

  it('warden --version and --help answer from the installed package', async () => {
    const bin = join(scratch, 'node_modules', '.bin', 'warden');
    const version = await run(bin, ['--version'], { cwd: scratch });
    expect(version.stdout).toBe(`warden ${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
    const help = await run(bin, ['--help'], { cwd: scratch });
    expect(help.stdout).toContain('run ');
  });

  it('a TypeScript program importing warden compiles under strict tsc and runs a task on a worker started from the package', async () => {
    const { address, namespace } = testTemporalAddress();
    const taskQueue = `warden-consumer-${randomUUID()}`;
    const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: join(scratch, '.warden'), TASK_QUEUE: taskQueue };
    await mkdir(join(scratch, 'src'), { recursive: true });
    await writeFile(
      join(scratch, 'src', 'main.ts'),
      [
        "import { connectClient, followAgentTask, loadTemporalConfig, parseTask, startAgentTask, type TaskResult } from 'warden';",
        '',
        'async function main(): Promise<void> {',
        '  const task = parseTask(',
        "    { user: 'consumer@example.com', intent: 'say hello', agent: { name: 'greeter', model: { driver: 'scripted', script: [{ final: 'hello from an installed warden' }] } } },",
        "    'inline-task.yaml',",
        '    process.cwd(),',
        '  );',
        '  const { client, connection } = await connectClient(loadTemporalConfig(process.env));',
        '  try {',
        "    const handle = await startAgentTask(client, task, { taskQueue: process.env['TASK_QUEUE'] });",
        '    const result: TaskResult = await followAgentTask(handle);',
        '    console.log(JSON.stringify({ workflowId: result.workflowId, status: result.status, final: result.final }));',
        '  } finally {',
        '    await connection.close();',
        '  }',
        '}',
        'void main();',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: false, outDir: 'dist', types: ['node'] }, include: ['src'] }, null, 2),
    );
    const tsc = await run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: scratch }).catch((error: { stdout: string; stderr: string }) => error);
    log('tsc -p tsconfig.json (strict, skipLibCheck: false)', `${tsc.stdout}${tsc.stderr}` || '(no errors)');
    expect(`${tsc.stdout}${tsc.stderr}`).toBe('');

    const worker = spawn(join(scratch, 'node_modules', '.bin', 'warden'), ['worker', '--task-queue', taskQueue], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(worker);
    const exited = exitOf(worker);
    try {
      await waitForOutput(worker, output, 'stderr', `worker polling ${taskQueue}`);
      const program = await run(process.execPath, [join(scratch, 'dist', 'main.js')], { cwd: scratch, env });
      log('node dist/main.js', program.stdout);
      expect(JSON.parse(program.stdout)).toMatchObject({ status: 'completed', final: { answer: 'hello from an installed warden' } });
    } finally {
      worker.kill('SIGTERM');
    }
    expect((await exited).code, output.stderr).toBe(0);
    log('warden worker (stderr)', output.stderr);
  }, 600_000);

  it('warden run --worker from the package runs a task with the pre-built workflow bundle', async () => {
    const { address, namespace } = testTemporalAddress();
    const taskQueue = `warden-consumer-run-${randomUUID()}`;
    await mkdir(join(scratch, 'workspace'), { recursive: true });
    await writeFile(join(scratch, 'workspace', 'notes.txt'), 'an installed warden reads this\n');
    await writeFile(
      join(scratch, 'task.yaml'),
      [
        'user: consumer@example.com',
        'intent: Read notes.txt',
        'agent:',
        '  name: reader',
        '  model: { driver: scripted, script: [ { tool: fs.read, args: { path: notes.txt } }, { final: done } ] }',
        'tools: { builtin: [fs.read] }',
        'grants: { tools: [fs.read] }',
        'resources: { workspace: ./workspace }',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: join(scratch, '.warden') };
    const { stdout, stderr } = await run(join(scratch, 'node_modules', '.bin', 'warden'), ['run', 'task.yaml', '--json', '--worker', '--task-queue', taskQueue], { cwd: scratch, env, maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(stdout) as TaskResult;
    log('warden run --worker (installed)', `${stderr}status ${result.status}, output ${JSON.stringify(result.steps[0]?.output)}`);
    expect(result.status).toBe('completed');
    expect(result.steps[0]?.output).toBe('an installed warden reads this\n');
    // No bundle was built at run time: the state folder has no bundle cache.
    expect(existsSync(join(scratch, '.warden', 'cache')) ? readdirSync(join(scratch, '.warden', 'cache')).filter((f) => f.startsWith('workflow-bundle')) : []).toEqual([]);
  }, 600_000);
});
