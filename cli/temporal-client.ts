/** The Temporal server CLI commands talk to (embedded server or TEMPORAL_ADDRESS), resolved one way for all. */
import type { Client, Connection } from '@temporalio/client';
import { stateDirOf } from '../state-dir';
import { connectClient } from '../temporal/connect';
import { ensureTemporalServer, type TemporalServerInfo } from '../temporal/embedded-server';
import { loadTemporalConfig, type TemporalConfig } from '../temporal/temporal-config';
import type { CliIo } from './cli-io';

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
  const server = await ensureTemporalServer({ env: io.env, stateDir, log: (line) => io.stderr(`warden: ${line}\n`) });
  return { config: { ...config, address: server.address, namespace: server.namespace }, server, stateDir };
}

export async function withCliClient<T>(io: CliIo, use: (client: Client) => Promise<T>): Promise<T> {
  const { config } = await resolveTemporal(io);
  const { client, connection }: { client: Client; connection: Connection } = await connectClient(config);
  try {
    return await use(client);
  } finally {
    await connection.close();
  }
}
