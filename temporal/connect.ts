/**
 * Opens connections to the Temporal server described by a {@link TemporalConfig}: a `Client`
 * for starting and querying workflows, a `NativeConnection` for workers. A server that cannot
 * be reached becomes `ERR_TEMPORAL_UNREACHABLE` (retryable) naming the address and the way to
 * fix it, instead of the SDK's bare gRPC error.
 */
import { Client, Connection, type ClientInterceptors } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { TemporalServerError } from '../errors';
import { toConnectionOptions, toNativeConnectionOptions, type TemporalConfig } from './temporal-config';

export interface ConnectedClient {
  client: Client;
  /** Close it when done: `await connection.close()`. */
  connection: Connection;
}

function unreachable(config: TemporalConfig, cause: unknown): TemporalServerError {
  const reason = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
  const hint =
    config.mode === 'external'
      ? 'Check TEMPORAL_ADDRESS and the TEMPORAL_TLS_* settings, or unset TEMPORAL_ADDRESS to let Warden run its own server.'
      : 'Start the embedded server (ensureTemporalServer / `warden server start`) or set TEMPORAL_ADDRESS.';
  return new TemporalServerError('ERR_TEMPORAL_UNREACHABLE', `cannot reach the Temporal server at ${config.address}${config.tls ? ' (TLS)' : ''}: ${reason}. ${hint}`, {
    details: { address: config.address, namespace: config.namespace, tls: config.tls !== undefined },
    retryable: true,
    cause,
  });
}

/**
 * Connects a workflow client in `config.namespace`; `interceptors` (e.g. `telemetryClientInterceptors`)
 * are installed on the client.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE`.
 */
export async function connectClient(config: TemporalConfig, options: { connectTimeoutMs?: number; interceptors?: ClientInterceptors } = {}): Promise<ConnectedClient> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...toConnectionOptions(config), connectTimeout: options.connectTimeoutMs ?? 10_000 });
  } catch (error) {
    throw unreachable(config, error);
  }
  return {
    client: new Client({ connection, namespace: config.namespace, ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }) }),
    connection,
  };
}

/**
 * Connects the native (Rust core) connection that `Worker.create` needs. `@temporalio/worker`
 * is loaded here, on demand, so client-only commands do not pay for the native module.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE`.
 */
export async function connectWorkerConnection(config: TemporalConfig): Promise<NativeConnection> {
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return await NativeConnection.connect(toNativeConnectionOptions(config));
  } catch (error) {
    throw unreachable(config, error);
  }
}
