/**
 * Ports for servers the tests start (ports.ts): never from the kernel's ephemeral range, where an
 * outgoing connection could take the port between the probe and the server's bind (a Temporal
 * server once failed "bind: address already in use" on such a port in a full run), and never the
 * same in two vitest workers.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ephemeralRangeStart, freePort, freeServerPorts, portSlice } from './ports';

const held: Server[] = [];
afterAll(async () => {
  await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
});

describe('freePort', () => {
  it('hands out distinct ports of this worker slice, all below the ephemeral range', async () => {
    const { first, size } = portSlice();
    const ports = [await freePort(), await freePort(), ...Object.values(await freeServerPorts()).map(Number)];
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(first);
      expect(port).toBeLessThan(first + size);
      expect(port).toBeLessThan(ephemeralRangeStart());
    }
  });

  it('hands out a port a server can bind at once', async () => {
    const port = await freePort();
    const server = createServer();
    held.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    expect((server.address() as { port: number }).port).toBe(port);
  });

  it('skips a port already bound', async () => {
    const { first, size } = portSlice();
    // Hold every port of the slice but one that this process has not handed out; that one comes back.
    const taken: Server[] = [];
    let spare: number | undefined;
    for (let port = first; port < first + size; port += 1) {
      const server = createServer();
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!bound) continue;
      if (spare === undefined) {
        await new Promise((resolve) => server.close(resolve));
        spare = port;
      } else taken.push(server);
    }
    held.push(...taken);
    expect(spare).toBeDefined();
    expect(await freePort()).toBe(spare);
    await expect(freePort()).rejects.toThrow(/no free port left in \d+\.\.\d+/);
  });
});

describe('portSlice', () => {
  it.each([
    ['pool 1', '1', 0],
    ['pool 2', '2', 1],
    ['pool 16', '16', 15],
    ['pool 17 wraps to the first', '17', 0],
    ['an empty pool id (outside vitest)', '', 0],
    ['a pool id that is not a number', 'x', 0],
  ])('%s', (_name, poolId, index) => {
    const first = portSlice('1').first;
    const slice = portSlice(poolId);
    expect(slice.first).toBe(first + index * slice.size);
    expect(slice.first + slice.size).toBeLessThanOrEqual(ephemeralRangeStart());
  });

  it('gives two workers disjoint slices', () => {
    const [a, b] = [portSlice('1'), portSlice('2')];
    expect(a.first + a.size).toBeLessThanOrEqual(b.first);
  });
});
