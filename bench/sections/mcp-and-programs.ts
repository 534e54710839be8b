/**
 * What Warden adds to an MCP tool call and to running a program, next to doing the same directly
 * in the same run:
 *
 *   MCP call   direct: the SDK client on a plain stdio server process (no sandbox, no checks)
 *              connection: through Warden's McpConnection (server in the OS sandbox, the tool
 *                list re-listed and checked against the pin before the call; and with
 *                `verify: on-change`, checked only when the server announces a change)
 *              step: a whole guarded step on Temporal (grant check, policy, credential minted and
 *                verified, activity, history), the step's workflow-side duration
 *   program    direct: child_process.spawn of the program
 *              sandbox: runSandboxed (bubblewrap, namespaces, cgroup, workspace overlay)
 *              step: a whole `proc.run` step on Temporal
 *
 * The server is @modelcontextprotocol/server-filesystem (`list_allowed_directories`), the program
 * `/bin/true` (so the figures are the overhead itself). Needs bubblewrap and a Temporal server
 * (the embedded one is started or reused).
 * Section `mcp` of `npm run bench` (only when named: it needs bubblewrap).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { McpConnection } from '../../mcp/mcp-connection';
import { McpStdioServerSchema } from '../../mcp/mcp-server-config';
import { runSandboxed } from '../../sandbox/os/run-sandboxed';
import { stateDirOf } from '../../state-dir';
import { parseTask } from '../../task/load-task-file';
import { connectClient, connectWorkerConnection } from '../../temporal/connect';
import { ensureTemporalServer } from '../../temporal/embedded-server';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { createWardenWorker, installQuietRuntime } from '../../worker/create-warden-worker';
import { figure, type BenchSection } from '../bench-section';
import { summarize } from '../stats';

const REPO_ROOT = path.join(__dirname, '..', '..');
const SERVER_ENTRY = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
const WARMUP = 5;

async function timed(count: number, call: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i += 1) await call();
  const samples: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await call();
    samples.push(performance.now() - started);
  }
  return samples;
}

async function mcpDirect(workspace: string, calls: number): Promise<number[]> {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [SERVER_ENTRY, workspace], stderr: 'ignore' }));
  try {
    return await timed(calls, async () => {
      await client.callTool({ name: 'list_allowed_directories', arguments: {} });
    });
  } finally {
    await client.close();
  }
}

async function mcpConnection(workspace: string, calls: number, verify: 'every-call' | 'on-change'): Promise<number[]> {
  const overlayDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-bench-overlay-'));
  const connection = await McpConnection.open('files', McpStdioServerSchema.parse({ command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] }), {
    env: {},
    allowedHosts: [],
    packagesDir: REPO_ROOT,
    lifetimeMs: 600_000,
    workspace: { root: workspace, overlayDir },
  });
  try {
    const pin = connection.listing.hash;
    return await timed(calls, async () => {
      await connection.callTool('list_allowed_directories', {}, { pin, timeoutMs: 30_000, verify });
    });
  } finally {
    await connection.close();
    fs.rmSync(overlayDir, { recursive: true, force: true });
  }
}

async function programDirect(calls: number): Promise<number[]> {
  return timed(calls, () => new Promise<void>((resolve, reject) => spawn('/bin/true', { stdio: 'ignore' }).once('exit', () => resolve()).once('error', reject)));
}

async function programSandboxed(workspace: string, calls: number): Promise<number[]> {
  const overlayDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-bench-overlay-'));
  try {
    return await timed(calls, async () => {
      const run = await runSandboxed({
        command: '/bin/true',
        workspace: { mode: 'overlay', root: workspace, overlayDir },
        limits: { wallTimeMs: 30_000, cpuTimeMs: 30_000, memoryMb: 512, maxProcesses: 64 },
      });
      if (run.exitCode !== 0) throw new Error(`sandboxed /bin/true failed: ${run.reason} ${run.stderr}`);
    });
  } finally {
    fs.rmSync(overlayDir, { recursive: true, force: true });
  }
}

/** Step durations of a task on Temporal making `steps` calls of `tool`. */
async function guardedSteps(workspace: string, steps: number): Promise<{ mcp: number[]; program: number[] }> {
  installQuietRuntime();
  const stateDir = stateDirOf();
  const server = await ensureTemporalServer({ stateDir, log: (l) => console.error(`warden: ${l}`) });
  const config = { ...loadTemporalConfig(), address: server.address, namespace: server.namespace };
  const { client, connection } = await connectClient(config);
  const workerConnection = await connectWorkerConnection(config);
  const taskQueue = `warden-bench-${Date.now()}`;
  const worker = await createWardenWorker({ connection: workerConnection, namespace: server.namespace, taskQueue, stateDir, cacheDir: path.join(stateDir, 'cache'), mcpPackagesDir: REPO_ROOT });
  const script = [
    ...Array.from({ length: steps }, () => ({ tool: 'files.list_allowed_directories', args: {} })),
    ...Array.from({ length: steps }, () => ({ tool: 'proc.run', args: { command: 'true' } })),
    { final: 'done' },
  ];
  const task = parseTask(
    {
      user: 'bench',
      intent: 'benchmark',
      agent: { name: 'bench', model: { driver: 'scripted', script } },
      tools: { builtin: ['proc.run'], mcp: { files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] } } },
      grants: { tools: ['proc.run', 'files.list_allowed_directories'], commands: ['true'] },
      resources: { workspace },
      limits: { maxSteps: 2 * steps + 1, toolTimeout: '30s' },
    },
    'bench',
    process.cwd(),
  );
  const following = startAgentTask(client, task, { taskQueue }).then((handle) => followAgentTask(handle));
  await worker.run(following);
  const result = await following;
  await workerConnection.close();
  await connection.close();
  if (result.status !== 'completed') throw new Error(`benchmark task ended ${result.status}: ${result.reason}`);
  const failed = result.steps.find((s) => s.error !== undefined);
  if (failed !== undefined) throw new Error(`benchmark step failed: ${failed.error?.code} ${failed.error?.message}`);
  return {
    mcp: result.steps.filter((s) => s.tool.startsWith('files.')).map((s) => s.durationMs),
    program: result.steps.filter((s) => s.tool === 'proc.run').map((s) => s.durationMs),
  };
}

export const mcpSection: BenchSection = {
  name: 'mcp',
  title: 'an MCP call and a program (proc.run) through Warden vs directly',
  runByDefault: false,
  async run({ quick }) {
    const calls = quick ? 30 : 100;
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-bench-ws-'));
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'bench');
    try {
      const direct = summarize(await mcpDirect(workspace, calls));
      const guarded = summarize(await mcpConnection(workspace, calls, 'every-call'));
      const onChange = summarize(await mcpConnection(workspace, calls, 'on-change'));
      const programs = summarize(await programDirect(calls));
      const sandboxed = summarize(await programSandboxed(workspace, calls));
      const steps = await guardedSteps(workspace, Math.min(calls, 50));
      const mcpBaseline = { label: 'SDK client, plain stdio server', summary: direct };
      const programBaseline = { label: 'spawn /bin/true', summary: programs };
      return {
        figures: [
          figure('mcp.call.checked', 'MCP call, server in the OS sandbox, tool list re-checked per call', guarded, { baseline: mcpBaseline }),
          figure('mcp.call.on-change', 'MCP call, server in the OS sandbox, verify: on-change', onChange, { baseline: mcpBaseline }),
          figure('mcp.step', 'MCP call as a guarded step on Temporal', summarize(steps.mcp), { baseline: mcpBaseline }),
          figure('proc.sandboxed', 'program in the OS sandbox (bubblewrap, cgroup, overlay)', sandboxed, { baseline: programBaseline }),
          figure('proc.step', 'proc.run as a guarded step on Temporal', summarize(steps.program), { baseline: programBaseline }),
        ],
        notes: ['server: @modelcontextprotocol/server-filesystem list_allowed_directories; program: /bin/true, so the figures are the overhead itself'],
      };
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
    }
  },
};
