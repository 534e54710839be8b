/**
 * Ports for servers the tests start (ports.ts): never from the kernel's ephemeral range, where an
 * outgoing connection could take the port between the probe and the server's bind (a Temporal
 * server once failed "bind: address already in use" on such a port in a full run), never the same
 * in two vitest workers, and each with the port after it reserved (a Temporal server binds P + 1
 * for its HTTP API when given no HTTP port).
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ephemeralRange, freePort, freeServerPorts, MAX_TEST_WORKERS, portSlice, SLICE_PORTS, testPortsStart } from './ports';

const held: Server[] = [];
afterAll(async () => {
  await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
});

function listen(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('freePort', () => {
  it('hands out ports of this worker slice, outside the ephemeral range, none another one neighbours', async () => {
    const { first, size } = portSlice();
    const { low, high } = ephemeralRange();
    const ports = [await freePort(), await freePort(), ...Object.values(await freeServerPorts()).map(Number)];
    const reserved = new Set(ports.flatMap((port) => [port, port + 1]));
    expect(reserved.size).toBe(2 * ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(first);
      expect(port + 1).toBeLessThan(first + size);
      expect(port < low || port > high).toBe(true);
    }
  });

  it('hands out a port a server can bind at once, with the next one free for its HTTP API', async () => {
    const port = await freePort();
    for (const p of [port, port + 1]) {
      const server = await listen(p);
      expect(server, `port ${p}`).toBeDefined();
      held.push(server!);
    }
  });

  it('skips ports already bound, and says so when the slice has none left', async () => {
    // A fresh copy of the module: none of its ports handed out yet.
    vi.resetModules();
    const fresh = await import('./ports.js');
    const { first, size } = fresh.portSlice();
    // Hold every port of the slice but two neighbours this process has not handed out; the lower comes back.
    let spare: number | undefined;
    for (let port = first; port < first + size; port += 1) {
      if (spare === undefined && port + 1 < first + size) {
        const [a, b] = [await listen(port), await listen(port + 1)];
        await Promise.all([a, b].map((s) => (s === undefined ? undefined : new Promise((resolve) => s.close(resolve)))));
        if (a !== undefined && b !== undefined) {
          spare = port;
          port += 1;
          continue;
        }
      }
      const server = await listen(port);
      if (server !== undefined) held.push(server);
    }
    expect(spare).toBeDefined();
    expect(await fresh.freePort()).toBe(spare);
    await expect(fresh.freePort()).rejects.toThrow(/no free port left in \d+\.\.\d+/);
  });
});

describe('portSlice', () => {
  it.each([
    ['pool 1', '1', 0],
    ['pool 2', '2', 1],
    ['pool 17 (WARDEN_TEST_FILE_WORKERS past 16)', '17', 16],
    [`pool ${MAX_TEST_WORKERS}`, String(MAX_TEST_WORKERS), MAX_TEST_WORKERS - 1],
    ['an empty pool id (outside vitest)', '', 0],
    ['a pool id that is not a number', 'x', 0],
  ])('%s', (_name, poolId, index) => {
    const slice = portSlice(poolId, 20_000);
    expect(slice).toEqual({ first: 20_000 + index * SLICE_PORTS, size: SLICE_PORTS });
  });

  it('gives every worker that can run at once a slice of its own', () => {
    const firsts = Array.from({ length: MAX_TEST_WORKERS }, (_, i) => portSlice(String(i + 1)).first);
    expect(new Set(firsts).size).toBe(MAX_TEST_WORKERS);
  });

  it('refuses a worker past the last slice, naming the setting', () => {
    expect(() => portSlice(String(MAX_TEST_WORKERS + 1))).toThrow(/at most \d+ test files run at once \(WARDEN_TEST_FILE_WORKERS\)/);
  });
});

describe('testPortsStart', () => {
  const needed = SLICE_PORTS * MAX_TEST_WORKERS;
  it.each([
    ["Linux's default range", '32768\t60999\n', 32_768 - needed],
    ['a range starting low, room above', '1024 50000', 50_001],
    ['a range ending high, room below', '40000 65535', 40_000 - needed],
  ])('%s', (_name, text, start) => {
    const range = ephemeralRange(text);
    const first = testPortsStart(range);
    expect(first).toBe(start);
    expect(first + needed - 1 < range.low || first > range.high).toBe(true);
  });

  it('refuses a range with no room either side, naming the kernel setting', () => {
    expect(() => testPortsStart(ephemeralRange('1024 65535'))).toThrow(/net\.ipv4\.ip_local_port_range = 1024 65535/);
  });

  it("reads Linux's default where the range cannot be read", () => {
    expect(ephemeralRange('not a range')).toEqual({ low: 32_768, high: 60_999 });
  });
});
