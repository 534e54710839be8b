/**
 * The Temporal server CLI commands talk to (embedded server or TEMPORAL_ADDRESS), resolved one
 * way for all. Only commands that run tasks (`run`, `worker`, `server start`) may start the
 * embedded server; every other command uses a server that already runs and says so when none
 * does, so looking at tasks never leaves a server behind.
 */
import type { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TemporalServerError } from '../errors';
import type { Poller } from '../worker/standalone-worker';
import { stateDirOf } from '../state-dir';
import { connectClient } from '../temporal/connect';
import { embeddedServerStatus, ensureTemporalServer, isPortInUse, type TemporalServerInfo } from '../temporal/embedded-server';
import { loadEmbeddedPorts, loadTemporalConfig, type TemporalConfig } from '../temporal/temporal-config';
import type { CliIo } from './cli-io';
import { terminalLine } from '../terminal-text';

export interface ResolvedTemporal {
  /** The configuration with the address and namespace of the server actually in use. */
  config: TemporalConfig;
  server: TemporalServerInfo;
  stateDir: string;
}

/** Reads the environment's Temporal settings and starts or reuses the embedded server when none is given. */
export async function resolveTemporal(io: CliIo): Promise<ResolvedTemporal> {
  const config = loadTemporalConfig(io.env);
  const stateDir = stateDirOf(io.env);
  const server = await ensureTemporalServer({ env: io.env, stateDir, log: (line) => io.stderr(`${terminalLine(`warden: ${line}`)}\n`) });
  return { config: { ...config, address: server.address, namespace: server.namespace }, server, stateDir };
}

/**
 * The configuration of a server that is already there: TEMPORAL_ADDRESS, or the embedded
 * server's port when something listens on it. Starts nothing.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE` when no embedded server runs.
 */
export async function runningServerConfig(env: NodeJS.ProcessEnv): Promise<TemporalConfig> {
  const config = loadTemporalConfig(env);
  if (config.mode === 'embedded' && !(await isPortInUse(loadEmbeddedPorts(env).port))) {
    const elsewhere = await recordedServerElsewhere(env, config.address);
    throw new TemporalServerError(
      'ERR_TEMPORAL_UNREACHABLE',
      `no Temporal server is running on ${config.address} (this command starts none), so there is no task to show, cancel or decide. ` +
        (elsewhere === undefined
          ? 'Start one with `warden server start` (or run a task with `warden run`), or set TEMPORAL_ADDRESS to use a cluster.'
          : elsewhere.hint),
      { details: { address: config.address, ...(elsewhere === undefined ? {} : { recordedAddress: elsewhere.address, stateDir: elsewhere.stateDir }) } },
    );
  }
  return config;
}

/**
 * When the address asked for is not answering but this state folder's own embedded server is
 * running on another port (started with other WARDEN_TEMPORAL_PORT settings), says where and
 * which variables to set. Never connects there: the address the environment gives is the one
 * used, so a command cannot be steered to a server the user did not name.
 */
async function recordedServerElsewhere(env: NodeJS.ProcessEnv, address: string): Promise<{ address: string; stateDir: string; hint: string } | undefined> {
  const stateDir = stateDirOf(env);
  const status = await embeddedServerStatus(stateDir).catch(() => undefined);
  if (status?.running !== true || status.record === undefined || status.address === undefined || status.address === address) return undefined;
  const { port, uiPort } = status.record;
  return {
    address: status.address,
    stateDir,
    hint:
      `This state folder's (${stateDir}) embedded server is running on ${status.address} (pid ${status.record.pid}; \`warden server status\`), ` +
      `but WARDEN_TEMPORAL_PORT ${env['WARDEN_TEMPORAL_PORT']?.trim() ? `is ${env['WARDEN_TEMPORAL_PORT'].trim()}` : 'is unset (default 7233)'}: ` +
      `set WARDEN_TEMPORAL_PORT=${port} WARDEN_TEMPORAL_UI_PORT=${uiPort} to use it (Warden does not switch addresses by itself), or \`warden server stop\` it and start one on ${address}.`,
  };
}

/** Runs `use` with a client of the server that already runs (see {@link runningServerConfig}). */
export async function withRunningServer<T>(io: CliIo, use: (client: Client, config: TemporalConfig) => Promise<T>): Promise<T> {
  const config = await runningServerConfig(io.env);
  const { client, connection }: { client: Client; connection: Connection } = await connectClient(config, { connectTimeoutMs: 5_000 });
  try {
    return await use(client, config);
  } finally {
    await connection.close();
  }
}

/**
 * Identities of the workers that polled `taskQueue` for workflow tasks (or, with `kind`
 * "activity", activity tasks) within the last `withinMs` (Temporal's own record).
 */
export async function recentPollers(client: Client, taskQueue: string, withinMs = 90_000, kind: 'workflow' | 'activity' = 'workflow'): Promise<string[]> {
  return (await recentPolls(client, taskQueue, withinMs, kind)).map((poller) => poller.identity);
}

/** As {@link recentPollers}, each identity with when the server last saw it poll (its `lastAccessTime`). */
export async function recentPolls(client: Client, taskQueue: string, withinMs = 90_000, kind: 'workflow' | 'activity' = 'workflow'): Promise<Poller[]> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: kind === 'activity' ? temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY : temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return (response.pollers ?? [])
    .map((p) => ({ identity: p.identity ?? 'unknown', lastPolledAt: Number(p.lastAccessTime?.seconds ?? 0) * 1000 + Math.floor((p.lastAccessTime?.nanos ?? 0) / 1e6) }))
    .filter((p) => p.lastPolledAt > 0 && now - p.lastPolledAt <= withinMs);
}
