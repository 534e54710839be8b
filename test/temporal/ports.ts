/**
 * Free loopback ports for servers the tests start themselves on a port they name (never 7233: that
 * is the run's server).
 *
 * The ports come from below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`). A port
 * from `listen(0)` is an ephemeral one: between closing the probe and the server binding it, any
 * outgoing connection of any process (a test client, the Temporal server's own dials) could be given
 * it as a local port, and the server failed "address already in use". Below the range the kernel
 * never hands a port out by itself, so only a process naming it can take it; each vitest worker
 * takes its ports from a slice of its own (VITEST_POOL_ID), so two test files never pick the same one.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports already handed out in this process. */
const handedOut = new Set<number>();

/** How many ports each vitest worker's slice has. */
const SLICE = 400;
/** How many slices there are (pool ids wrap around past it). */
const SLICES = 16;

/** The first port of the kernel's ephemeral range; 32768 (Linux's default) where it cannot be read. */
export function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && Number.isInteger(low) && low > SLICE * SLICES + 10_000) return low;
  } catch {
    // not Linux: the default below
  }
  return 32_768;
}

/** This worker's slice of ports, `[first, first + SLICE)`, all below the ephemeral range. */
export function portSlice(poolId: string | undefined = process.env.VITEST_POOL_ID): { first: number; size: number } {
  const id = Number(poolId);
  const index = Number.isInteger(id) && id > 0 ? (id - 1) % SLICES : 0;
  return { first: ephemeralRangeStart() - SLICE * SLICES + SLICE * index, size: SLICE };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A loopback port of this worker's slice that was free a moment ago and that no earlier call in this process returned. */
export async function freePort(): Promise<number> {
  const { first, size } = portSlice();
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i += 1) {
    const port = first + ((start + i) % size);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port left in ${first}..${first + size - 1} (this test process has handed out ${handedOut.size})`);
}

/**
 * The three ports an embedded server listens on (gRPC, web UI, the frontend's HTTP API), each free:
 * a server given only the gRPC port takes port + 1 for its HTTP API, which nothing checked was free.
 */
export async function freeServerPorts(): Promise<{ WARDEN_TEMPORAL_PORT: string; WARDEN_TEMPORAL_UI_PORT: string; WARDEN_TEMPORAL_HTTP_PORT: string }> {
  return { WARDEN_TEMPORAL_PORT: String(await freePort()), WARDEN_TEMPORAL_UI_PORT: String(await freePort()), WARDEN_TEMPORAL_HTTP_PORT: String(await freePort()) };
}
