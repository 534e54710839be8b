/**
 * Helpers of the tests that run two attempts of one tool call at once through the real `runTool`
 * activity (test/recovery/attempt-fence.test.ts, test/attacks/superseded-*.test.ts): a task grant
 * saved where the activity reads it, and a wait for something an attempt does.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { RunToolInput } from '../../activities/run-tool';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { McpConnectionPool } from '../../executors/mcp-connection-pool';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { hashIntent } from '../../identity/intent-hash';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import type { Task } from '../../task/task-schema';
import type { ActivityDeps } from '../../activities/index';
import { protectedSetForCall } from '../../activities/run-tool';
import { openTaskServers } from '../../executors/mcp-executor';
import { parseTask } from '../../task/load-task-file';
import { FIXTURES as MCP_FIXTURES, REPO_ROOT } from '../mcp/mcp-test-kit';

/** What a worker's `runTool` needs of this machine: a fresh state folder, its keys and credential stores, a real sandbox host, an MCP pool. */
export interface AttemptWorker {
  stateDir: string;
  keystore: Keystore;
  stores: LocalCredentialStores;
  sandbox: SandboxClient;
  pool: McpConnectionPool;
  close(): Promise<void>;
}

/** Opens an AttemptWorker on a new state folder under the system's temporary folder (`prefix` its name's start). */
export async function openAttemptWorker(prefix: string): Promise<AttemptWorker> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const pool = new McpConnectionPool();
  const keystore = await openKeystore({ stateDir });
  const stores = openCredentialStores({ stateDir });
  const sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  return {
    stateDir,
    keystore,
    stores,
    sandbox,
    pool,
    async close() {
      await pool.close();
      await sandbox.close();
      stores.close();
    },
  };
}

/** Issues and saves the grant of `task` run as `workflowId`; `expiresAt` (epoch ms) defaults to 10 minutes from now. */
export async function saveTaskGrant(identity: { keystore: Keystore; stores: LocalCredentialStores }, workflowId: string, task: Task, expiresAt = Date.now() + 10 * 60_000): Promise<IssuedGrant> {
  const issued = await issueTaskGrant(identity.keystore, {
    workflowId,
    user: task.user,
    intentHash: hashIntent(task.intent),
    agent: { name: task.agent.name, model: { id: 'scripted', version: '1' } },
    grants: { tools: task.grants.tools, subagents: [], hosts: [], databases: task.grants.databases, ...(task.grants.commands === undefined ? {} : { commands: task.grants.commands }) },
    limits: { maxSteps: 10, toolTimeoutMs: 30_000, toolMemoryMb: 64 },
    expiresAt,
  });
  identity.stores.grants.saveGrant(issued);
  return issued;
}

/** Resolves once `check()` holds (looked at every 20 ms); rejects naming `what` after `ms`. */
export async function waitUntil(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One attempt of a `runTool` call under way: its environment (cancel it as the server's timeout reaches it) and how it ended. */
export interface RunningAttempt {
  env: MockActivityEnvironment;
  /** 'completed', or the failure's type (its code) and message. */
  outcome: Promise<string>;
}

/** Starts attempt `attempt` of `input` through the real activity `runTool`, with Warden's heartbeat and start-to-close timeouts. */
export function startAttempt(runTool: (input: RunToolInput) => Promise<unknown>, input: RunToolInput, attempt: number): RunningAttempt {
  const env = new MockActivityEnvironment({ attempt, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never);
  const outcome = env.run(runTool, input).then(
    () => 'completed',
    (e: unknown) => `${(e as { type?: string }).type ?? 'failed'}: ${(e as Error).message}`,
  );
  return { env, outcome };
}

/** The activities' deps on `w` (sandbox, state, identity, MCP with the repository's packages), servers' files under `readOnly` readable. */
export function attemptDeps(w: AttemptWorker, readOnly: string[] = []): ActivityDeps {
  return { sandbox: w.sandbox, stateDir: w.stateDir, identity: { keystore: w.keystore, stores: w.stores }, mcp: { pool: w.pool, packagesDir: REPO_ROOT, extraReadOnlyPaths: [MCP_FIXTURES, ...readOnly] } } as ActivityDeps;
}

/** Parses `spec` (a task file's content) on `w` and starts its MCP servers, their tools listed and pinned as `openToolSources` does. */
export async function mcpTaskOn(w: AttemptWorker, spec: Record<string, unknown>, root: { rootWorkflowId: string; rootRunId: string }, readOnly: string[] = []): Promise<Task> {
  const task = parseTask(spec, 'attempt-overlap.yaml', w.stateDir);
  const mcpDeps = { pool: w.pool, packagesDir: REPO_ROOT, extraReadOnlyPaths: [MCP_FIXTURES, ...readOnly], env: process.env, stateDir: w.stateDir, protectedSetOf: (t: Task) => protectedSetForCall(attemptDeps(w, readOnly), t) };
  const listings = await openTaskServers(mcpDeps, task, root.rootWorkflowId, Date.now() + 10 * 60_000, root.rootRunId);
  return { ...task, tools: { ...task.tools, mcpPinned: listings } };
}
