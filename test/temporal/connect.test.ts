/**
 * Connections built from a TemporalConfig. mTLS is checked end to end against a TLS server that
 * demands a client certificate and answers GetSystemInfo like a Temporal frontend, so the test
 * proves the certificate files really reach the handshake of both the client and the worker
 * (Rust core) connection.
 */
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TemporalServerError } from '../../errors';
import { checkNamespace, connectClient, connectWorkerConnection } from '../../temporal/connect';
import { connectFailureReason } from '../../temporal/connect-failure-reason';
import { loadTemporalConfig, type TemporalConfig } from '../../temporal/temporal-config';
import { testTemporalAddress, testTemporalConfig } from '../support/temporal';
import { makeTestPki, type TestPki } from './pki';
import { freePort } from './ports';

async function failure(promise: Promise<unknown>): Promise<TemporalServerError> {
  try {
    await promise;
  } catch (error) {
    return error as TemporalServerError;
  }
  throw new Error('expected a failure');
}

describe('the test run server', () => {
  it('is provided to tests and answers a client and a worker connection', async () => {
    const { address, namespace } = testTemporalAddress();
    expect(address).toMatch(/^[^:]+:\d+$/);
    expect(process.env.WARDEN_TEST_TEMPORAL_ADDRESS).toBe(address);
    const config = testTemporalConfig();
    expect(config).toMatchObject({ address, namespace });
    const { client, connection } = await connectClient(config);
    try {
      expect(client.options.namespace).toBe(namespace);
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.capabilities).toBeTruthy();
    } finally {
      await connection.close();
    }
    const native = await connectWorkerConnection(config);
    await native.close();
  });
});

describe('unreachable servers', () => {
  it('a closed port is ERR_TEMPORAL_UNREACHABLE, retryable, naming the address', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: address });
    const error = await failure(connectClient(config, { connectTimeoutMs: 1_000 }));
    expect(error).toBeInstanceOf(TemporalServerError);
    expect(error.code).toBe('ERR_TEMPORAL_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`cannot reach the Temporal server at ${address}`);
    expect(error.message).toContain('TEMPORAL_ADDRESS');
    const native = await failure(connectWorkerConnection(config));
    expect(native.code).toBe('ERR_TEMPORAL_UNREACHABLE');
  });
});

describe('an unreachable server: the message says why (a probe of the address after the SDK gave up)', () => {
  /** A loopback TCP server that accepts connections and never answers: no gRPC, no TLS. */
  let silent: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    silent = createServer((socket) => void sockets.add(socket.on('error', () => undefined)));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
  const silentAddress = () => `127.0.0.1:${(silent.address() as AddressInfo).port}`;

  const CAUSES: { name: string; address: () => Promise<string> | string; kind: string; says: (address: string) => string }[] = [
    { name: 'a closed port', address: async () => `127.0.0.1:${await freePort()}`, kind: 'refused', says: (address) => `nothing listens on ${address} (connection refused)` },
    { name: 'a host name that does not resolve', address: () => 'no-such-temporal-host.invalid:7233', kind: 'dns', says: () => 'the host name no-such-temporal-host.invalid does not resolve (DNS: ENOTFOUND)' },
    { name: 'a port that accepts TCP and never answers gRPC', address: silentAddress, kind: 'no-grpc-answer', says: (address) => `${address} accepts TCP connections but gave no gRPC answer: it may be another service, or the port may want TLS` },
  ];

  it.each(CAUSES)('$name: the probe names it', async (row) => {
    const address = await row.address();
    const reason = await connectFailureReason(address);
    expect(reason.kind).toBe(row.kind);
    expect(reason.text).toContain(row.says(address));
  });

  it.each(CAUSES)('$name: the client and the worker connection say it in ERR_TEMPORAL_UNREACHABLE', async (row) => {
    const address = await row.address();
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: address });
    for (const error of [await failure(connectClient(config, { connectTimeoutMs: 1_000 })), await failure(connectWorkerConnection(config))]) {
      expect(error.code).toBe('ERR_TEMPORAL_UNREACHABLE');
      expect(error.message).toContain(`cannot reach the Temporal server at ${address}: ${row.says(address)}`);
      expect(error.details).toMatchObject({ reason: row.kind });
    }
  }, 60_000);

  // The SDK waits out its connect timeout for a name that will never resolve; Warden's lookup beside it
  // ends the wait. A connect timeout far beyond the test's own makes the test fail if it waited.
  it('a host name that does not resolve fails before the connect timeout, client and worker connection', async () => {
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: 'no-such-temporal-host.invalid:7233' });
    const client = await failure(connectClient(config, { connectTimeoutMs: 600_000 }));
    const native = await failure(connectWorkerConnection(config));
    for (const error of [client, native]) {
      expect(error.message).toContain('the host name no-such-temporal-host.invalid does not resolve (DNS: ENOTFOUND)');
      expect((error.cause as { code?: unknown }).code).toBe('ENOTFOUND');
    }
  }, 60_000);

  it('with a proxy in the environment the name is left to the proxy: the SDK keeps its connect timeout', async () => {
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: 'no-such-temporal-host.invalid:7233' });
    const saved = process.env.grpc_proxy;
    process.env.grpc_proxy = `http://127.0.0.1:${await freePort()}`;
    try {
      const error = await failure(connectClient(config, { connectTimeoutMs: 1_000 }));
      expect(error.code).toBe('ERR_TEMPORAL_UNREACHABLE');
      // The SDK's own failure, not the lookup's: the lookup did not cut the connect short.
      expect((error.cause as { code?: unknown }).code).not.toBe('ENOTFOUND');
      // And the reason names the proxy, not a direct probe's finding.
      expect(error.message).toContain(`the connection goes through the proxy ${process.env.grpc_proxy!.slice('http://'.length)} (grpc_proxy)`);
      expect(error.details).toMatchObject({ reason: 'proxied' });
    } finally {
      if (saved === undefined) delete process.env.grpc_proxy;
      else process.env.grpc_proxy = saved;
    }
  }, 60_000);

  // As grpc-js 1.14 decides (http_proxy.js): lower case only, an http: URL only, no_grpc_proxy before
  // no_proxy, entries as written (suffix or IPv4 CIDR; no wildcard, no trimming).
  it.each<[string, NodeJS.ProcessEnv, string | undefined]>([
    ['https_proxy, its password never shown', { https_proxy: 'http://user:s3cret@127.0.0.1:9' }, '127.0.0.1:9 (https_proxy)'],
    ['a proxy URL that does not parse (port 65536), its password never shown: grpc-js goes direct', { grpc_proxy: 'http://svc:p@ssw0rd-s3cret@proxy.example:65536' }, undefined],
    ['a value without a scheme: grpc-js goes direct', { https_proxy: 'svc:s3cret@127.0.0.1:18932' }, undefined],
    ['an https: proxy URL: grpc-js goes direct', { https_proxy: 'https://127.0.0.1:9' }, undefined],
    ['HTTPS_PROXY in upper case only: grpc-js reads lower case, goes direct', { HTTPS_PROXY: 'http://127.0.0.1:9' }, undefined],
    ['http_proxy without a port: port 80', { http_proxy: 'http://proxy.example' }, 'proxy.example:80 (http_proxy)'],
    ['grpc_proxy before https_proxy', { grpc_proxy: 'http://10.0.0.1:1', https_proxy: 'http://10.0.0.2:2' }, '10.0.0.1:1 (grpc_proxy)'],
    ['no_proxy naming the host: direct', { https_proxy: 'http://127.0.0.1:9', no_proxy: 'example.com,127.0.0.1' }, undefined],
    ['no_proxy with a space before the host: grpc-js does not trim, so the proxy is used', { https_proxy: 'http://127.0.0.1:9', no_proxy: 'localhost, 127.0.0.1' }, '127.0.0.1:9 (https_proxy)'],
    ["no_proxy '*': no wildcard in grpc-js, so the proxy is used", { https_proxy: 'http://127.0.0.1:9', no_proxy: '*' }, '127.0.0.1:9 (https_proxy)'],
    ['no_grpc_proxy set: no_proxy is not read', { https_proxy: 'http://127.0.0.1:9', no_grpc_proxy: 'other.example', no_proxy: '127.0.0.1' }, '127.0.0.1:9 (https_proxy)'],
    ['an IPv4 CIDR in no_grpc_proxy holding the host: direct', { https_proxy: 'http://127.0.0.1:9', no_grpc_proxy: '127.0.0.0/8' }, undefined],
  ])('with %s', async (_name, env, names) => {
    const port = await freePort();
    const reason = await connectFailureReason(`127.0.0.1:${port}`, { env });
    expect(JSON.stringify(reason)).not.toContain('s3cret');
    if (names === undefined) {
      expect(reason.kind).toBe('refused');
    } else {
      expect(reason).toEqual({ kind: 'proxied', text: `the connection goes through the proxy ${names}: check that proxy, or exempt 127.0.0.1 with no_grpc_proxy` });
    }
  });

  it("the worker's native connection takes no proxy: its probe is direct whatever the environment", async () => {
    const port = await freePort();
    expect((await connectFailureReason(`127.0.0.1:${port}`, { env: { grpc_proxy: 'http://127.0.0.1:9' }, client: false })).kind).toBe('refused');
  });

  it('an IPv6 address is written in brackets', async () => {
    const port = await freePort();
    const reason = await connectFailureReason(`[::1]:${port}`, { env: {} });
    expect(reason.text).toContain(`[::1]:${port}`);
  });

  it('TLS toward a port that answers nothing names the plain side as a possibility', async () => {
    const reason = await connectFailureReason(silentAddress(), { tls: true });
    expect(reason.text).toContain('TLS is on (TEMPORAL_TLS_*) and the port may speak plain gRPC');
  });

  it.each(['http://127.0.0.1:7233', '127.0.0.1:99999', ''])('an address that is not host:port (%j) is said so, never thrown', async (address) => {
    expect(await connectFailureReason(address)).toEqual({ kind: 'unknown', text: `${address} is not host:port` });
  });
});

describe('mTLS against a server that requires a client certificate', () => {
  let pki: TestPki;
  let server: Http2SecureServer;
  let address: string;
  const seen: Array<{ path: string; clientCN: string | undefined }> = [];

  beforeAll(async () => {
    pki = makeTestPki();
    server = createSecureServer({
      key: readFileSync(pki.serverKey),
      cert: readFileSync(pki.serverCert),
      ca: readFileSync(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('stream', (stream, headers) => {
      const peer = (stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate();
      seen.push({ path: String(headers[':path']), clientCN: peer?.subject?.CN as string | undefined });
      stream.resume();
      // An empty GetSystemInfoResponse: 5-byte gRPC frame header, zero-length message.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.alloc(5));
    });
    server.on('sessionError', () => {});
    server.on('tlsClientError', () => {});
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    address = `127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(pki.dir, { recursive: true, force: true });
  });

  function config(extra: NodeJS.ProcessEnv): TemporalConfig {
    return loadTemporalConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS: '1', ...extra });
  }
  const full = (): NodeJS.ProcessEnv => ({
    TEMPORAL_TLS_CA: pki.caCert,
    TEMPORAL_TLS_CERT: pki.clientCert,
    TEMPORAL_TLS_KEY: pki.clientKey,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.warden.test',
  });

  it('the client connection presents the client certificate', async () => {
    seen.length = 0;
    const { connection } = await connectClient(config(full()));
    await connection.close();
    expect(seen).toContainEqual({ path: '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo', clientCN: 'warden-client' });
  });

  it('the worker (native) connection presents it too', async () => {
    seen.length = 0;
    const native = await connectWorkerConnection(config(full()));
    await native.close();
    expect(seen).toContainEqual({ path: '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo', clientCN: 'warden-client' });
  });

  it.each<[string, (pki: TestPki) => NodeJS.ProcessEnv]>([
    ['no client certificate', () => ({ TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' })],
    ['a CA that did not sign the server', (p) => ({ TEMPORAL_TLS_CA: p.otherCaCert })],
    ['no server-name override (the certificate is for temporal.warden.test, not 127.0.0.1)', () => ({ TEMPORAL_TLS_SERVER_NAME: '' })],
  ])('fails with ERR_TEMPORAL_UNREACHABLE given %s', async (_, change) => {
    const env = { ...full(), ...change(pki) };
    const error = await failure(connectClient(config(env), { connectTimeoutMs: 2_000 }));
    expect(error.code).toBe('ERR_TEMPORAL_UNREACHABLE');
    expect(error.message).toContain('(TLS)');
  });
});

describe('checkNamespace: what each answer to DescribeNamespace means', () => {
  const config = { address: '127.0.0.1:7234', namespace: 'default', mode: 'external' as const };
  const answering = (code: number | undefined) => ({
    describeNamespace: async () => {
      if (code !== undefined) throw Object.assign(new Error(`${code} gRPC`), { code });
      return {};
    },
  });
  it.each<[string, number | undefined, string | undefined]>([
    ['an answer', undefined, undefined],
    ['NOT_FOUND (no such namespace)', 5, 'ERR_TEMPORAL_NAMESPACE_NOT_FOUND'],
    ['UNIMPLEMENTED (a gRPC server that is not a Temporal frontend)', 12, 'ERR_TEMPORAL_UNREACHABLE'],
    ['PERMISSION_DENIED (a key scoped without DescribeNamespace)', 7, undefined],
    ['UNAVAILABLE (left to the calls that follow)', 14, undefined],
  ])('%s', async (_, code, expected) => {
    const outcome = await checkNamespace(answering(code), config).then(
      () => undefined,
      (error: TemporalServerError) => ({ code: error.code, retryable: error.retryable, names: error.message.includes(config.address) }),
    );
    expect(outcome).toEqual(expected === undefined ? undefined : { code: expected, retryable: false, names: true });
  });
});
