/**
 * Where the test Temporal server is. The vitest global setup (`global-setup.ts`) ensures the
 * server and provides its address; test files read it here instead of from TEMPORAL_ADDRESS,
 * which the setup deliberately leaves alone.
 */
import { inject } from 'vitest';
import { loadTemporalConfig, type TemporalConfig } from '../../temporal/temporal-config';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `host:port` of the Temporal server the tests run against. */
    temporalAddress: string;
    temporalNamespace: string;
  }
}

/** Address and namespace of the test Temporal server. */
export function testTemporalAddress(): { address: string; namespace: string } {
  const address = inject('temporalAddress') ?? process.env.WARDEN_TEST_TEMPORAL_ADDRESS;
  const namespace = inject('temporalNamespace') ?? process.env.WARDEN_TEST_TEMPORAL_NAMESPACE ?? 'default';
  if (!address) throw new Error('no test Temporal server: run the tests through vitest, whose globalSetup (test/support/global-setup.ts) starts one');
  return { address, namespace };
}

/** A full config for `connectClient` / `connectWorkerConnection`, with TLS when TEMPORAL_ADDRESS uses it. */
export function testTemporalConfig(): TemporalConfig {
  const { address, namespace } = testTemporalAddress();
  return { ...loadTemporalConfig(process.env), address, namespace };
}

/**
 * The whole environment of a `warden` child process (worker or CLI) on the test Temporal server:
 * PATH and HOME, the server's address and namespace, its own state folder, then `extra`. Nothing
 * else of this process's environment reaches the child.
 */
export function wardenProcessEnv(stateDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const config = testTemporalConfig();
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: config.address,
    TEMPORAL_NAMESPACE: config.namespace,
    WARDEN_STATE_DIR: stateDir,
    ...extra,
  };
}
