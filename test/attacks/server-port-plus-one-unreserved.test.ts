/**
 * Attack on test/temporal/ports.ts (12bab86): ports for servers the tests start come from a slice
 * per vitest worker, so two test files never pick the same one. But a server given only
 * WARDEN_TEMPORAL_PORT and WARDEN_TEMPORAL_UI_PORT (server-on-another-port.test.ts's beforeAll,
 * which starts a real server that way) also binds its HTTP API on port + 1
 * (loadEmbeddedPorts), a port freePort neither checked nor reserved:
 * - when freePort handed out its slice's last port, port + 1 is the next vitest worker's first
 *   port, which that worker's freePort may hand out to its own server at the same moment;
 * - a later freePort in the same process may hand out port + 1 while the server is still starting.
 * freeServerPorts exists for exactly this (its comment); the callers that start a server with
 * two freePort calls were left on them.
 * Also: vitest.config.ts takes any positive WARDEN_TEST_FILE_WORKERS, and past 16 workers the pool
 * ids wrap onto slices in use (pool 17 runs beside pool 1 on the same 400 ports, each with its own
 * record of what it handed out).
 * Fixed (test/temporal/ports.ts): freePort reserves P + 1 with every port P it hands out and never
 * hands out a slice's last port; 32 slices of 200 ports, and a worker past them is refused by name.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadEmbeddedPorts } from '../../temporal/temporal-config';
import { freePort, portSlice } from '../temporal/ports';

afterEach(() => {
  vi.restoreAllMocks();
});

/** The environment server-on-another-port.test.ts starts its server with. */
async function serverEnvAsTheTestBuildsIt(): Promise<Record<string, string>> {
  const serverPort = await freePort();
  const uiPort = await freePort();
  return { WARDEN_TEMPORAL_PORT: String(serverPort), WARDEN_TEMPORAL_UI_PORT: String(uiPort) };
}

describe('every port a test server binds is one its worker reserved', () => {
  it("a server on the slice's last port binds nothing of the next worker's slice", async () => {
    const { first, size } = portSlice();
    // freePort's scan is asked to start at the slice's last port (it never hands that one out: its neighbour is the next slice's).
    const random = vi.spyOn(Math, 'random').mockReturnValueOnce((size - 0.5) / size).mockReturnValueOnce(0.5);
    const env = await serverEnvAsTheTestBuildsIt();
    random.mockRestore();
    expect(Number(env.WARDEN_TEMPORAL_PORT)).toBeLessThan(first + size - 1);
    const bound = loadEmbeddedPorts(env);
    const next = portSlice(String(Number(process.env.VITEST_POOL_ID ?? '1') + 1));
    for (const port of [bound.port, bound.uiPort, bound.httpPort]) {
      expect(port >= next.first && port < next.first + next.size, `port ${port} is in the next worker's slice ${next.first}..${next.first + next.size - 1}`).toBe(false);
    }
  });

  it("a later freePort in the same file never hands out the server's HTTP port", async () => {
    const { first, size } = portSlice();
    vi.spyOn(Math, 'random').mockReturnValueOnce(100.5 / size).mockReturnValueOnce(300.5 / size);
    const env = await serverEnvAsTheTestBuildsIt();
    const { httpPort } = loadEmbeddedPorts(env);
    // The next call (an `askedPort` in that file) scans from the server's HTTP port.
    vi.spyOn(Math, 'random').mockReturnValueOnce((httpPort - first + 0.5) / size);
    expect(await freePort()).not.toBe(httpPort);
  });

  it('no two vitest workers that run at once share a slice (WARDEN_TEST_FILE_WORKERS=17)', () => {
    const workers = 17;
    const slices = Array.from({ length: workers }, (_, i) => portSlice(String(i + 1)).first);
    expect(new Set(slices).size).toBe(workers);
  });
});
