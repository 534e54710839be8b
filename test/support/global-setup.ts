/**
 * Vitest global setup: one real Temporal server for the whole run. With TEMPORAL_ADDRESS set the
 * tests use that cluster; otherwise the embedded dev server of `<repo>/.warden-test` (port
 * WARDEN_TEMPORAL_PORT, default 7233) is started or reused. Tests get the address through
 * `inject('temporalAddress')` (see `temporal.ts`) and WARDEN_TEST_TEMPORAL_ADDRESS. Teardown stops
 * the server only if this run started it, so a server someone left running keeps running.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureTemporalServer, stopEmbeddedServer } from '../../temporal/embedded-server';
import './temporal';

const STATE_DIR = join(__dirname, '..', '..', '.warden-test');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await ensureTemporalServer({
    env: process.env,
    stateDir: STATE_DIR,
    log: (line) => process.stderr.write(`[temporal] ${line}\n`),
  });
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  process.env.WARDEN_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.WARDEN_TEST_TEMPORAL_NAMESPACE = server.namespace;
  // Commands the tests run (`warden run`, `warden mcp serve`) use a task queue of this run's own:
  // a worker left on the shared server by another run never takes this run's tasks.
  process.env.WARDEN_TASK_QUEUE ??= `warden-test-run-${randomUUID()}`;
  return async () => {
    if (server.started) await stopEmbeddedServer(STATE_DIR);
  };
}
