/**
 * Where Warden's Temporal server is and how to talk to it, read once from the environment.
 *
 * `TEMPORAL_ADDRESS` means "use that cluster, start nothing" (external mode); without it Warden
 * runs its own dev server on 127.0.0.1 (embedded mode). Every problem is reported as a
 * `ConfigError` naming the variable at fault, before any connection is attempted, so a typo in
 * a certificate path fails in milliseconds instead of as an opaque TLS handshake error.
 * Certificate and key files are read here and only their bytes travel further.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { z } from 'zod';
import { ConfigError } from '../errors';

export const DEFAULT_TEMPORAL_PORT = 7233;
export const DEFAULT_TEMPORAL_UI_PORT = 8233;
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';
/** The embedded server only ever binds loopback: it has no authentication. */
export const EMBEDDED_TEMPORAL_HOST = '127.0.0.1';

const PortSchema = z.coerce.number({ error: 'a port from 1 to 65535' }).int('a port from 1 to 65535').min(1, 'a port from 1 to 65535').max(65535, 'a port from 1 to 65535');

/** `host:port`, `host` (port 7233) or `[ipv6]:port`, without a scheme: that is what gRPC wants. */
/** Temporal's frontend port, which an address without one means (the SDK's default too). */
export const DEFAULT_TEMPORAL_FRONTEND_PORT = 7233;

/**
 * The host and port of a Temporal address (`host[:port]`, an IPv6 host in brackets, RFC 3986
 * authority without user info); the port defaults to 7233. Undefined when `address` is not one.
 * The host is returned without brackets, as `net.connect` and `dns.lookup` take it.
 */
export function hostAndPortOf(address: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(address);
  if (match === null) return undefined;
  const port = match[2] === undefined ? DEFAULT_TEMPORAL_FRONTEND_PORT : Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export const TemporalAddressSchema = z
  .string()
  .trim()
  .refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s), 'host:port without a scheme (e.g. "temporal.example.com:7233", not "https://...")')
  .refine((s) => hostAndPortOf(s) !== undefined, 'host:port, e.g. "127.0.0.1:7233" or "[::1]:7233"');

export const TemporalNamespaceSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'a namespace name: letters, digits, ".", "_" or "-"');

export const TemporalTlsSchema = z.strictObject({
  /** Name expected in the server certificate when it differs from the host in the address. */
  serverName: z.string().min(1).optional(),
  serverRootCACertificate: z.instanceof(Buffer).optional(),
  clientCertPair: z.strictObject({ crt: z.instanceof(Buffer), key: z.instanceof(Buffer) }).optional(),
});

export const TemporalConfigSchema = z.strictObject({
  mode: z.enum(['external', 'embedded']),
  address: TemporalAddressSchema,
  namespace: TemporalNamespaceSchema.default(DEFAULT_TEMPORAL_NAMESPACE),
  /** Present (possibly empty: system roots, no client cert) when the connection uses TLS. */
  tls: TemporalTlsSchema.optional(),
});

export type TemporalTlsConfig = z.infer<typeof TemporalTlsSchema>;
export type TemporalConfig = z.infer<typeof TemporalConfigSchema>;

/** Ports of the embedded dev server: gRPC frontend, web UI and the frontend's HTTP API. */
export interface EmbeddedPorts {
  port: number;
  uiPort: number;
  /** Pinned (the dev server would pick a random one) so Warden knows it and can keep agents away from it. */
  httpPort: number;
}

/** The Temporal frontend's HTTP API port in Temporal's own default configuration. */
export const DEFAULT_TEMPORAL_HTTP_PORT = 7243;

const FlagSchema = z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], '1 or 0 (also true/false, yes/no, on/off)');

/** The raw variables. Each key is the variable's name, so an issue's path names the culprit. */
const TemporalEnvSchema = z.object({
  TEMPORAL_ADDRESS: TemporalAddressSchema.optional(),
  TEMPORAL_NAMESPACE: TemporalNamespaceSchema.optional(),
  TEMPORAL_TLS: z.string().trim().toLowerCase().pipe(FlagSchema).optional(),
  TEMPORAL_TLS_CA: z.string().optional(),
  TEMPORAL_TLS_CERT: z.string().optional(),
  TEMPORAL_TLS_KEY: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().trim().min(1).optional(),
  WARDEN_TEMPORAL_PORT: PortSchema.optional(),
  WARDEN_TEMPORAL_UI_PORT: PortSchema.optional(),
  WARDEN_TEMPORAL_HTTP_PORT: PortSchema.optional(),
});
type TemporalEnv = z.infer<typeof TemporalEnvSchema>;

const TLS_FILE_VARIABLES = ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_SERVER_NAME'] as const;

function invalid(variable: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError('ERR_CONFIG_INVALID', `${variable}: ${message}`, { details: { variable }, cause });
}

/** Empty variables count as unset (`TEMPORAL_ADDRESS= warden run ...` is a common way to clear one). */
function parseEnv(env: NodeJS.ProcessEnv): TemporalEnv {
  const present: Record<string, string> = {};
  for (const key of Object.keys(TemporalEnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') present[key] = value;
  }
  const parsed = TemporalEnvSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = String(issue?.path[0] ?? 'environment');
  throw invalid(variable, `expected ${issue?.message ?? 'a valid value'}, got ${JSON.stringify(present[variable] ?? '')}`);
}

function readPemFile(variable: string, file: string, kind: 'certificate' | 'key'): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw invalid(variable, `cannot read ${kind} file ${file}: ${reason}`, error);
  }
  try {
    if (kind === 'certificate') new X509Certificate(bytes);
    else createPrivateKey(bytes);
  } catch (error) {
    // Deliberately no parser detail: for a key file it could echo key material.
    throw invalid(variable, `${file} is not a PEM-encoded ${kind === 'certificate' ? 'X.509 certificate' : 'private key'}`, error);
  }
  return bytes;
}

function tlsFromEnv(env: TemporalEnv): TemporalTlsConfig | undefined {
  const flag = env.TEMPORAL_TLS;
  const explicitOff = flag === '0' || flag === 'false' || flag === 'no' || flag === 'off';
  const setting = TLS_FILE_VARIABLES.find((name) => env[name] !== undefined);
  if (explicitOff) {
    if (setting !== undefined) throw invalid('TEMPORAL_TLS', `is off but ${setting} is set; remove one of them`);
    return undefined;
  }
  // A CA, client certificate or server name only makes sense over TLS, so any of them turns it on.
  if (flag === undefined && setting === undefined) return undefined;

  if (env.TEMPORAL_TLS_CERT !== undefined && env.TEMPORAL_TLS_KEY === undefined) {
    throw invalid('TEMPORAL_TLS_KEY', 'is required with TEMPORAL_TLS_CERT (the client private key for mTLS)');
  }
  if (env.TEMPORAL_TLS_KEY !== undefined && env.TEMPORAL_TLS_CERT === undefined) {
    throw invalid('TEMPORAL_TLS_CERT', 'is required with TEMPORAL_TLS_KEY (the client certificate for mTLS)');
  }
  const tls: TemporalTlsConfig = {};
  if (env.TEMPORAL_TLS_SERVER_NAME !== undefined) tls.serverName = env.TEMPORAL_TLS_SERVER_NAME;
  if (env.TEMPORAL_TLS_CA !== undefined) tls.serverRootCACertificate = readPemFile('TEMPORAL_TLS_CA', env.TEMPORAL_TLS_CA, 'certificate');
  if (env.TEMPORAL_TLS_CERT !== undefined && env.TEMPORAL_TLS_KEY !== undefined) {
    tls.clientCertPair = {
      crt: readPemFile('TEMPORAL_TLS_CERT', env.TEMPORAL_TLS_CERT, 'certificate'),
      key: readPemFile('TEMPORAL_TLS_KEY', env.TEMPORAL_TLS_KEY, 'key'),
    };
  }
  return tls;
}

/**
 * Reads the Temporal settings from `env`. External mode when `TEMPORAL_ADDRESS` is set,
 * otherwise embedded mode at `127.0.0.1:<WARDEN_TEMPORAL_PORT or 7233>`.
 * @throws ConfigError `ERR_CONFIG_INVALID` naming the variable at fault (`details.variable`).
 */
export function loadTemporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  const parsed = parseEnv(env);
  const namespace = parsed.TEMPORAL_NAMESPACE ?? DEFAULT_TEMPORAL_NAMESPACE;
  const tls = tlsFromEnv(parsed);
  if (parsed.TEMPORAL_ADDRESS !== undefined) {
    return TemporalConfigSchema.parse({ mode: 'external', address: parsed.TEMPORAL_ADDRESS, namespace, ...(tls ? { tls } : {}) });
  }
  if (tls !== undefined) {
    const variable = parsed.TEMPORAL_TLS !== undefined ? 'TEMPORAL_TLS' : (TLS_FILE_VARIABLES.find((name) => parsed[name] !== undefined) ?? 'TEMPORAL_TLS');
    throw invalid(variable, 'TLS settings need TEMPORAL_ADDRESS: the embedded development server only speaks plaintext on 127.0.0.1');
  }
  const { port } = loadEmbeddedPorts(env);
  return TemporalConfigSchema.parse({ mode: 'embedded', address: `${EMBEDDED_TEMPORAL_HOST}:${port}`, namespace });
}

/**
 * Ports for the embedded server: `WARDEN_TEMPORAL_PORT` (7233), `WARDEN_TEMPORAL_UI_PORT`
 * (8233, or port + 1000 when only the gRPC port was moved, as `temporal server start-dev` does) and
 * `WARDEN_TEMPORAL_HTTP_PORT` (7243, Temporal's default, or port + 1 when the gRPC port was moved).
 */
export function loadEmbeddedPorts(env: NodeJS.ProcessEnv = process.env): EmbeddedPorts {
  const parsed = parseEnv(env);
  const port = parsed.WARDEN_TEMPORAL_PORT ?? DEFAULT_TEMPORAL_PORT;
  let uiPort = parsed.WARDEN_TEMPORAL_UI_PORT;
  if (uiPort === undefined) uiPort = port === DEFAULT_TEMPORAL_PORT ? DEFAULT_TEMPORAL_UI_PORT : port + 1000 <= 65535 ? port + 1000 : undefined;
  if (uiPort === undefined) throw invalid('WARDEN_TEMPORAL_UI_PORT', `must be set when WARDEN_TEMPORAL_PORT (${port}) is above 64535`);
  if (uiPort === port) throw invalid('WARDEN_TEMPORAL_UI_PORT', `must differ from WARDEN_TEMPORAL_PORT (${port})`);
  let httpPort = parsed.WARDEN_TEMPORAL_HTTP_PORT;
  if (httpPort === undefined) httpPort = port === DEFAULT_TEMPORAL_PORT ? DEFAULT_TEMPORAL_HTTP_PORT : port + 1 <= 65535 ? port + 1 : undefined;
  if (httpPort === undefined) throw invalid('WARDEN_TEMPORAL_HTTP_PORT', `must be set when WARDEN_TEMPORAL_PORT is ${port}`);
  if (httpPort === port || httpPort === uiPort) throw invalid('WARDEN_TEMPORAL_HTTP_PORT', `must differ from WARDEN_TEMPORAL_PORT (${port}) and WARDEN_TEMPORAL_UI_PORT (${uiPort})`);
  return { port, uiPort, httpPort };
}

type SdkTls = NonNullable<Exclude<ConnectionOptions['tls'], boolean | null>>;

function sdkTls(tls: TemporalTlsConfig | undefined): SdkTls | undefined {
  if (tls === undefined) return undefined;
  return {
    ...(tls.serverName !== undefined ? { serverNameOverride: tls.serverName } : {}),
    ...(tls.serverRootCACertificate !== undefined ? { serverRootCACertificate: tls.serverRootCACertificate } : {}),
    ...(tls.clientCertPair !== undefined ? { clientCertPair: { crt: tls.clientCertPair.crt, key: tls.clientCertPair.key } } : {}),
  };
}

/** Options for `Connection.connect` of `@temporalio/client`. No `tls` key means plaintext. */
export function toConnectionOptions(config: TemporalConfig): ConnectionOptions {
  const tls = sdkTls(config.tls);
  return tls === undefined ? { address: config.address } : { address: config.address, tls };
}

/** Options for `NativeConnection.connect` of `@temporalio/worker`. No `tls` key means plaintext. */
export function toNativeConnectionOptions(config: TemporalConfig): NativeConnectionOptions {
  const tls = sdkTls(config.tls);
  return tls === undefined ? { address: config.address } : { address: config.address, tls };
}
