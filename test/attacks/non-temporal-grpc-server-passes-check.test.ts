/**
 * Finding (issue 17 area, the namespace check; severity medium): TEMPORAL_ADDRESS naming a gRPC
 * server that is not Temporal's frontend (the history or matching service's port 7234/7235, an
 * OTLP collector on 4317, any gRPC service) passes both of Warden's connection checks:
 * `Connection.connect` ignores UNIMPLEMENTED from GetSystemInfo ("old servers"), and
 * `checkNamespace` (temporal/connect.ts) lets every answer but NOT_FOUND pass, UNIMPLEMENTED
 * included. Then:
 *
 * - every client command dies with the SDK's bare error and a stack trace from bin/warden.js
 *   (`warden: ServiceError: Failed to list workflows  at WorkflowClient.rethrowGrpcError ...`,
 *   exit 1): list, status, cancel, approvals, run ("Failed to start Workflow");
 * - `warden worker` prints "worker polling warden-agent-tasks on 127.0.0.1:<port> ... Ctrl-C
 *   stops it" and runs on forever, polling a server that has no Temporal service, with only the
 *   Core's "Temporal Server 1.16.0 or newer is required ..." warnings on stderr.
 *
 * Verdict: FIXED (was open). The fix followed the suggestion: in checkNamespace, treat UNIMPLEMENTED (and a missing
 * GetSystemInfo) as "not a Temporal frontend": a typed ERR_TEMPORAL_UNREACHABLE (or a new code)
 * naming the address and saying the server there does not serve temporal.api.workflowservice;
 * table over NOT_FOUND, UNIMPLEMENTED, PERMISSION_DENIED and UNAVAILABLE answers.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import { REPO_ROOT } from '../support/warden-test-env';

const dir = fs.mkdtempSync(join(tmpdir(), 'warden-not-temporal-'));
const server = new grpc.Server();
let address = '';
beforeAll(async () => {
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  address = `127.0.0.1:${port}`;
});
afterAll(() => {
  server.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});
const workspace = join(dir, 'workspace');
fs.mkdirSync(workspace);
const task = join(dir, 'task.json');
fs.writeFileSync(task, JSON.stringify({ user: 'u@example.com', intent: 'list the files', agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'listed' }] } }, tools: { builtin: ['fs.list'] }, grants: { tools: ['fs.list'] }, resources: { workspace } }));
const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: join(dir, 'state'), TEMPORAL_ADDRESS: address });

it.each<[string, string[]]>([
  ['list', ['list']],
  ['status', ['status', 'warden-task-x']],
  ['cancel', ['cancel', 'warden-task-x']],
  ['approvals', ['approvals']],
  ['run', ['run', task]],
])('warden %s against a gRPC server that is not Temporal fails with a typed error naming the address', async (name, argv) => {
  let stderr = '';
  const io: CliIo = { stdout: () => undefined, stderr: (t) => void (stderr += t), env: env() };
  const outcome = await main(argv, io).catch((error: unknown) => `threw ${String(error)}`);
  expect({ outcome, stderr }).toEqual({ outcome: expect.any(Number), stderr: expect.stringMatching(new RegExp(`^warden ${name}: ERR_TEMPORAL_\\w+: .*${address}`, 'm')) });
}, 120_000);

it('warden worker against a gRPC server that is not Temporal exits with a typed error instead of "polling"', async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker'], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  try {
    // Whichever comes first: the process ends, or it says it is polling.
    const first = await new Promise<string>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('worker polling')) resolve('polling');
      });
      child.stdout.resume();
      child.once('exit', (code) => resolve(`exit ${code}`));
    });
    expect({ first, stderr }).toEqual({ first: expect.stringMatching(/^exit [12]$/), stderr: expect.stringMatching(/^warden worker: ERR_TEMPORAL_/m) });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 120_000);
