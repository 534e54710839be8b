/**
 * `probeTemporal` asks "is this a Temporal server?" and must leave nothing behind: no gRPC retry
 * scheduled on a connection it already closed (that retry throws "Channel has been shut down"
 * from a timer, an uncaught exception that fails a whole test run). One case per way a port can
 * fail to be Temporal, each with the probe answering in time.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { probeTemporal } from '../../temporal/embedded-server';
import { testTemporalAddress } from '../support/temporal';

const servers: Server[] = [];
/** The squatters' own ends of the connections, closed before counting what the probe left. */
const accepted: Socket[] = [];
afterAll(() => {
  for (const server of servers) server.close();
});

async function squatter(onConnection: (socket: Socket) => void): Promise<string> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `127.0.0.1:${address.port}`;
}

/** Timers this process holds right now (a retry left scheduled is one). */
function pending(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('probeTemporal', () => {
  // A call failed with UNAVAILABLE is what the SDK's interceptor retries: one connection each
  // time. (A silent server is the channel's own business: it may reconnect while the call waits.)
  it.each([
    ['an HTTP/1 server that answers and hangs up (UNAVAILABLE on every attempt)', (s: Socket) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'), 1],
    ['a server that hangs up at once', (s: Socket) => s.destroy(), 1],
    ['a server that accepts and never speaks', () => {}, undefined],
  ])('%s: false, and no retry is left running', async (_name, behaviour, expectedConnections) => {
    const address = await squatter(behaviour);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => void uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const before = pending();
      accepted.splice(0);
      await expect(probeTemporal(address, { timeoutMs: 1_500 })).resolves.toBe(false);
      // A probe asks once: one connection, however the server failed it (retries would be more).
      const connections = accepted.splice(0);
      for (const socket of connections) socket.destroy();
      if (expectedConnections !== undefined) expect(connections).toHaveLength(expectedConnections);
      expect(pending()).toBeLessThanOrEqual(before);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('nothing listening: false', async () => {
    const address = await squatter(() => {});
    servers.pop()!.close();
    await expect(probeTemporal(address, { timeoutMs: 1_000 })).resolves.toBe(false);
  });

  it('the test server: true, and nothing is left running', async () => {
    const { address, namespace } = testTemporalAddress();
    const before = pending();
    await expect(probeTemporal(address, { timeoutMs: 10_000, namespace })).resolves.toBe(true);
    expect(pending()).toBeLessThanOrEqual(before);
  });
});
