/** Temporal settings from the environment: each mistake is ERR_CONFIG_INVALID naming its variable. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../errors';
import { loadEmbeddedPorts, loadTemporalConfig, toConnectionOptions, toNativeConnectionOptions } from '../../temporal/temporal-config';
import { makeTestPki, type TestPki } from './pki';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadTemporalConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_CONFIG_INVALID');
    return error as ConfigError;
  }
  throw new Error(`expected ERR_CONFIG_INVALID for ${JSON.stringify(env)}`);
}

describe('loadTemporalConfig: modes', () => {
  it('without TEMPORAL_ADDRESS is embedded on 127.0.0.1:7233, namespace default, plaintext', () => {
    expect(loadTemporalConfig({})).toEqual({ mode: 'embedded', address: '127.0.0.1:7233', namespace: 'default' });
  });

  it('embedded mode follows WARDEN_TEMPORAL_PORT and TEMPORAL_NAMESPACE', () => {
    expect(loadTemporalConfig({ WARDEN_TEMPORAL_PORT: '17233', TEMPORAL_NAMESPACE: 'agents' })).toEqual({
      mode: 'embedded',
      address: '127.0.0.1:17233',
      namespace: 'agents',
    });
  });

  it('TEMPORAL_ADDRESS means external mode', () => {
    expect(loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_NAMESPACE: 'prod' })).toEqual({
      mode: 'external',
      address: 'temporal.example.com:7233',
      namespace: 'prod',
    });
    expect(loadTemporalConfig({ TEMPORAL_ADDRESS: '[::1]:7233' }).address).toBe('[::1]:7233');
    expect(loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal' }).address).toBe('temporal');
  });

  it('empty variables count as unset', () => {
    expect(loadTemporalConfig({ TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: ' ', WARDEN_TEMPORAL_PORT: '' })).toEqual(loadTemporalConfig({}));
  });

  it('TEMPORAL_TLS=1 alone means TLS with the system roots', () => {
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: 'ns.tmprl.cloud:7233', TEMPORAL_TLS: '1' });
    expect(config.tls).toEqual({});
    expect(toConnectionOptions(config)).toEqual({ address: 'ns.tmprl.cloud:7233', tls: {} });
  });

  it('TEMPORAL_TLS=0 means plaintext: no tls key at all', () => {
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS: 'false' });
    expect(config.tls).toBeUndefined();
    expect(toConnectionOptions(config)).toEqual({ address: 'localhost:7233' });
    expect(toNativeConnectionOptions(config)).toEqual({ address: 'localhost:7233' });
  });
});

describe('loadTemporalConfig: bad environment names the variable', () => {
  const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'https://temporal.example.com:7233' }, /without a scheme/],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'temporal.example.com:99999' }, /host:port/],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'two words:7233' }, /host:port/],
    ['TEMPORAL_NAMESPACE', { TEMPORAL_NAMESPACE: 'no spaces please' }, /namespace/],
    ['TEMPORAL_TLS', { TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS: 'maybe' }, /1 or 0/],
    ['WARDEN_TEMPORAL_PORT', { WARDEN_TEMPORAL_PORT: 'seven' }, /port from 1 to 65535/],
    ['WARDEN_TEMPORAL_PORT', { WARDEN_TEMPORAL_PORT: '70000' }, /port from 1 to 65535/],
    ['WARDEN_TEMPORAL_PORT', { WARDEN_TEMPORAL_PORT: '72.5' }, /port from 1 to 65535/],
    ['TEMPORAL_TLS_KEY', { TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CERT: '/tmp/client.pem' }, /required with TEMPORAL_TLS_CERT/],
    ['TEMPORAL_TLS_CERT', { TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_KEY: '/tmp/client.key' }, /required with TEMPORAL_TLS_KEY/],
    ['TEMPORAL_TLS_CA', { TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CA: '/nonexistent/ca.pem' }, /no such file/],
    ['TEMPORAL_TLS', { TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS: '0', TEMPORAL_TLS_SERVER_NAME: 'x' }, /is off but TEMPORAL_TLS_SERVER_NAME is set/],
    ['TEMPORAL_TLS', { TEMPORAL_TLS: '1' }, /need TEMPORAL_ADDRESS/],
  ];
  it.each(cases)('%s: %j', (variable, env, message) => {
    const error = configError(env);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
    expect(error.message).toMatch(message);
    expect(error.details.variable).toBe(variable);
  });

  it('the UI port must differ from the gRPC port', () => {
    expect(() => loadEmbeddedPorts({ WARDEN_TEMPORAL_PORT: '9000', WARDEN_TEMPORAL_UI_PORT: '9000' })).toThrow(/WARDEN_TEMPORAL_UI_PORT: must differ/);
  });

  it('the UI port defaults to 8233, or port + 1000 when the gRPC port moved (as start-dev does)', () => {
    expect(loadEmbeddedPorts({})).toEqual({ port: 7233, uiPort: 8233, httpPort: 7243 });
    expect(loadEmbeddedPorts({ WARDEN_TEMPORAL_PORT: '17233' })).toEqual({ port: 17233, uiPort: 18233, httpPort: 17234 });
    expect(loadEmbeddedPorts({ WARDEN_TEMPORAL_PORT: '17233', WARDEN_TEMPORAL_UI_PORT: '9999' })).toEqual({ port: 17233, uiPort: 9999, httpPort: 17234 });
    // The HTTP API port is pinned (start-dev would pick a random one), so agents can be kept away from it.
    expect(loadEmbeddedPorts({ WARDEN_TEMPORAL_HTTP_PORT: '7777' })).toMatchObject({ httpPort: 7777 });
    expect(() => loadEmbeddedPorts({ WARDEN_TEMPORAL_HTTP_PORT: '8233' })).toThrow(/WARDEN_TEMPORAL_HTTP_PORT: must differ/);
  });
});

describe('loadTemporalConfig: mTLS from real PEM files', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('builds serverNameOverride, root CA and client pair for both connection kinds', () => {
    const config = loadTemporalConfig({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'secure',
      TEMPORAL_TLS: '1',
      TEMPORAL_TLS_CA: pki.caCert,
      TEMPORAL_TLS_CERT: pki.clientCert,
      TEMPORAL_TLS_KEY: pki.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.warden.test',
    });
    const expectedTls = {
      serverNameOverride: 'temporal.warden.test',
      serverRootCACertificate: readFileSync(pki.caCert),
      clientCertPair: { crt: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) },
    };
    expect(config.mode).toBe('external');
    expect(config.namespace).toBe('secure');
    expect(config.tls?.serverName).toBe('temporal.warden.test');
    expect(toConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233', tls: expectedTls });
    expect(toNativeConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233', tls: expectedTls });
  });

  it('a CA file alone turns TLS on without a client certificate', () => {
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal.warden.test:7233', TEMPORAL_TLS_CA: pki.caCert });
    expect(toConnectionOptions(config).tls).toEqual({ serverRootCACertificate: readFileSync(pki.caCert) });
  });

  it('a key where a certificate belongs is rejected, without echoing the key', () => {
    const error = configError({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CERT: pki.clientKey, TEMPORAL_TLS_KEY: pki.clientKey });
    expect(error.message).toMatch(/^TEMPORAL_TLS_CERT: .* is not a PEM-encoded X\.509 certificate$/);
    expect(error.message).not.toContain('PRIVATE KEY');
  });

  it('a certificate where the key belongs is rejected', () => {
    const error = configError({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CERT: pki.clientCert, TEMPORAL_TLS_KEY: pki.clientCert });
    expect(error.message).toMatch(/^TEMPORAL_TLS_KEY: .* is not a PEM-encoded private key$/);
  });

  it('an unreadable or garbage CA file names TEMPORAL_TLS_CA', () => {
    const garbage = join(pki.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    expect(configError({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CA: garbage }).details.variable).toBe('TEMPORAL_TLS_CA');
    expect(configError({ TEMPORAL_ADDRESS: 'x:7233', TEMPORAL_TLS_CA: pki.dir }).message).toMatch(/^TEMPORAL_TLS_CA: cannot read certificate file/);
  });
});
