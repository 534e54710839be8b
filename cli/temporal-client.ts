/** A Temporal client for CLI commands that talk to running tasks (embedded server or TEMPORAL_ADDRESS). */
import type { Client, Connection } from '@temporalio/client';
import { stateDirOf } from '../state-dir';
import { connectClient } from '../temporal/connect';
import { ensureTemporalServer } from '../temporal/embedded-server';
import { loadTemporalConfig } from '../temporal/temporal-config';
import type { CliIo } from './cli-io';

export async function withCliClient<T>(io: CliIo, use: (client: Client) => Promise<T>): Promise<T> {
  const config = loadTemporalConfig(io.env);
  const server = await ensureTemporalServer({ env: io.env, stateDir: stateDirOf(io.env), log: (line) => io.stderr(`warden: ${line}\n`) });
  const { client, connection }: { client: Client; connection: Connection } = await connectClient({ ...config, address: server.address, namespace: server.namespace });
  try {
    return await use(client);
  } finally {
    await connection.close();
  }
}
