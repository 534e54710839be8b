/**
 * Opens connections to the Temporal server described by a {@link TemporalConfig}: a `Client`
 * for starting and querying workflows, a `NativeConnection` for workers. A server that cannot
 * be reached becomes `ERR_TEMPORAL_UNREACHABLE` (retryable) naming the address and the way to
 * fix it, instead of the SDK's bare gRPC error.
 */
import { Client, Connection, type ClientInterceptors } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { TemporalServerError } from '../errors';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { connectFailureReason, proxyOf } from './connect-failure-reason';
import { isGrpcNotFound, isGrpcUnimplemented } from './grpc-status';
import { hostAndPortOf, toConnectionOptions, toNativeConnectionOptions, type TemporalConfig } from './temporal-config';

export interface ConnectedClient {
  client: Client;
  /** Close it when done: `await connection.close()`. */
  connection: Connection;
}

/**
 * `ERR_TEMPORAL_UNREACHABLE` for a failed connect to `config.address`, saying why
 * (connect-failure-reason.ts): the SDK's own reason ("Failed to connect before the deadline") is
 * the same for every cause, so a probe of the address names the cause when it can; the SDK's
 * reason stays when the address accepts TCP (its text may then be the one that matters: a
 * certificate, a protocol).
 */
async function unreachable(config: TemporalConfig, cause: unknown, connection: 'client' | 'worker'): Promise<TemporalServerError> {
  const sdkReason = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
  const probe = await connectFailureReason(config.address, { tls: config.tls !== undefined, client: connection === 'client' });
  const reason = probe.kind === 'no-grpc-answer' || probe.kind === 'proxied' || probe.kind === 'unknown' ? `${probe.text} (${sdkReason})` : probe.text;
  const hint =
    config.mode === 'external'
      ? 'Check TEMPORAL_ADDRESS and the TEMPORAL_TLS_* settings, or unset TEMPORAL_ADDRESS to let Warden run its own server.'
      : 'Start the embedded server (ensureTemporalServer / `warden server start`) or set TEMPORAL_ADDRESS.';
  return new TemporalServerError('ERR_TEMPORAL_UNREACHABLE', `cannot reach the Temporal server at ${config.address}${config.tls ? ' (TLS)' : ''}: ${reason}. ${hint}`, {
    details: { address: config.address, namespace: config.namespace, tls: config.tls !== undefined, reason: probe.kind },
    retryable: true,
    cause,
  });
}

/**
 * Fails when the address's host name is known not to exist (DNS NXDOMAIN, `ENOTFOUND`): the SDK
 * would wait out its whole connect timeout (10 s) for a name that will not resolve, and its
 * connect left running keeps the process alive after. Looked up before the connect (an IP
 * address needs no lookup); only that answer counts: a resolver that fails for now (`EAI_AGAIN`)
 * leaves the SDK to its timeout. Not for a client connection grpc-js routes through a proxy
 * (connect-failure-reason.ts `proxyOf`): the proxy may resolve a name this machine cannot. The
 * worker's native connection takes no proxy from the environment: its name is always checked.
 */
async function assertNameExists(config: TemporalConfig, connection: 'client' | 'worker', env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const host = hostAndPortOf(config.address)?.host;
  if (host === undefined || isIP(host) !== 0 || (connection === 'client' && proxyOf(host, env) !== undefined)) return;
  try {
    await lookup(host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND') throw error;
  }
}

/**
 * Connects a workflow client in `config.namespace` and checks that the server has that namespace
 * ({@link checkNamespace}): every command that talks to Temporal, the client-only ones included
 * (`list`, `status`, `kill`, `approve`, `mcp serve --no-worker`...), then names a wrong
 * TEMPORAL_NAMESPACE instead of failing later with a bare gRPC NOT_FOUND. `interceptors` (e.g.
 * `telemetryClientInterceptors`) are installed on the client.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE`, `ERR_TEMPORAL_NAMESPACE_NOT_FOUND`.
 */
export async function connectClient(config: TemporalConfig, options: { connectTimeoutMs?: number; interceptors?: ClientInterceptors } = {}): Promise<ConnectedClient> {
  let connection: Connection;
  try {
    await assertNameExists(config, 'client');
    connection = await Connection.connect({ ...toConnectionOptions(config), connectTimeout: options.connectTimeoutMs ?? 10_000 });
  } catch (error) {
    throw await unreachable(config, error, 'client');
  }
  try {
    await checkNamespace(connection.workflowService, config);
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  return {
    client: new Client({ connection, namespace: config.namespace, ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }) }),
    connection,
  };
}

/**
 * Asks the server for `config.namespace` (WorkflowService.DescribeNamespace) and fails when the
 * server says it has no such namespace, or has no such method: UNIMPLEMENTED means the address
 * is a gRPC server that is not a Temporal frontend (the history service's port 7234, an OTLP
 * collector on 4317), which `Connection.connect` lets through (it ignores UNIMPLEMENTED from
 * GetSystemInfo, for old servers) and on which a worker would otherwise poll forever. Any other
 * answer passes: a server that denies the call (a key scoped without DescribeNamespace) or a
 * proxy that does not forward it is left to the calls that follow. Run before any `Worker.create`: @temporalio/worker 1.24.0 leaks its
 * workflow threads when the native worker is refused its namespace, and reports it as a bare
 * `TransportError`.
 * @throws TemporalServerError `ERR_TEMPORAL_NAMESPACE_NOT_FOUND` (not retryable) naming the
 *   namespace and the server; `ERR_TEMPORAL_UNREACHABLE` (not retryable) naming the address when
 *   the server there does not serve Temporal's WorkflowService.
 */
export async function checkNamespace(service: { describeNamespace(request: { namespace: string }): Promise<unknown> }, config: Pick<TemporalConfig, 'address' | 'namespace' | 'mode'>): Promise<void> {
  try {
    await service.describeNamespace({ namespace: config.namespace });
  } catch (error) {
    if (isGrpcUnimplemented(error)) {
      throw new TemporalServerError('ERR_TEMPORAL_UNREACHABLE', `the server at ${config.address} is not a Temporal frontend: it does not serve temporal.api.workflowservice.v1.WorkflowService (DescribeNamespace answered UNIMPLEMENTED). Point TEMPORAL_ADDRESS at the frontend's port (7233 by default), not the history, matching or another gRPC service.`, {
        details: { address: config.address, namespace: config.namespace },
        retryable: false,
        cause: error,
      });
    }
    if (!isGrpcNotFound(error)) return;
    const hint = config.mode === 'external'
      ? 'Check TEMPORAL_NAMESPACE, or create the namespace on the cluster (temporal operator namespace create).'
      : 'Check TEMPORAL_NAMESPACE (the embedded server creates the namespace it is started with: `warden server stop`, then run again).';
    throw new TemporalServerError('ERR_TEMPORAL_NAMESPACE_NOT_FOUND', `the Temporal server at ${config.address} has no namespace "${config.namespace}" (TEMPORAL_NAMESPACE). ${hint}`, {
      details: { address: config.address, namespace: config.namespace },
      cause: error,
    });
  }
}

/**
 * Connects the native (Rust core) connection that `Worker.create` needs, and checks that the
 * server has `config.namespace` ({@link checkNamespace}). `@temporalio/worker` is loaded here, on
 * demand, so client-only commands do not pay for the native module.
 * @throws TemporalServerError `ERR_TEMPORAL_UNREACHABLE`, `ERR_TEMPORAL_NAMESPACE_NOT_FOUND`.
 */
export async function connectWorkerConnection(config: TemporalConfig): Promise<NativeConnection> {
  const { NativeConnection } = await import('@temporalio/worker');
  let connection: NativeConnection;
  try {
    await assertNameExists(config, 'worker');
    connection = await NativeConnection.connect(toNativeConnectionOptions(config));
  } catch (error) {
    throw await unreachable(config, error, 'worker');
  }
  try {
    await checkNamespace(connection.workflowService, config);
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  return connection;
}
