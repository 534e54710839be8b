/**
 * Free loopback ports for servers the tests start themselves on a port they name (never 7233: that
 * is the run's server).
 *
 * The ports come from outside the kernel's ephemeral range (`net.ipv4.ip_local_port_range`). A port
 * from `listen(0)` is an ephemeral one: between closing the probe and the server binding it, any
 * outgoing connection of any process (a test client, the Temporal server's own dials) could be given
 * it as a local port, and the server failed "address already in use". Outside the range the kernel
 * never hands a port out by itself, so only a process naming it can take it; each vitest worker
 * takes its ports from a slice of its own (VITEST_POOL_ID), so two test files never pick the same one.
 *
 * Every port handed out comes with the next one reserved too: a Temporal server given port P and
 * no HTTP port binds P + 1 for its HTTP API (temporal/temporal-config.ts), so P + 1 is free, in the
 * same slice, and never handed out after.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports already handed out (or reserved beside one) in this process. */
const handedOut = new Set<number>();

/** How many ports each vitest worker's slice has. */
export const SLICE_PORTS = 200;
/** How many vitest workers can run at once, each on its own slice. */
export const MAX_TEST_WORKERS = 32;
/** Ports below this are left alone (privileged, or well known). */
const LOWEST = 10_000;

/** The kernel's ephemeral range, `[low, high]`; Linux's default (32768-60999) where it cannot be read. */
export function ephemeralRange(text?: string): { low: number; high: number } {
  try {
    const [low, high] = (text ?? readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high) && low <= high) return { low, high };
  } catch {
    // not Linux: the default below
  }
  return { low: 32_768, high: 60_999 };
}

/** The first port of the test workers' slices: below the ephemeral range, else above it; throws when neither has room. */
export function testPortsStart(range: { low: number; high: number } = ephemeralRange()): number {
  const needed = SLICE_PORTS * MAX_TEST_WORKERS;
  if (range.low - needed >= LOWEST) return range.low - needed;
  if (range.high + needed <= 65_535) return range.high + 1;
  throw new Error(
    `no room for test servers' ports outside the kernel's ephemeral range (net.ipv4.ip_local_port_range = ${range.low} ${range.high}): ` +
      `${needed} ports are needed below or above it; narrow the range, e.g. sysctl -w net.ipv4.ip_local_port_range="32768 60999"`,
  );
}

/** This worker's slice of ports, `[first, first + size)`, outside the ephemeral range. */
export function portSlice(poolId: string | undefined = process.env.VITEST_POOL_ID, start: number = testPortsStart()): { first: number; size: number } {
  const id = Number(poolId);
  const index = Number.isInteger(id) && id > 0 ? id - 1 : 0;
  if (index >= MAX_TEST_WORKERS) throw new Error(`vitest worker ${id} has no port slice: at most ${MAX_TEST_WORKERS} test files run at once (WARDEN_TEST_FILE_WORKERS)`);
  return { first: start + SLICE_PORTS * index, size: SLICE_PORTS };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port of this worker's slice that was free a moment ago, with the port after it free
 * too and reserved (see the module comment); no earlier call in this process returned or reserved
 * either. Throws when the slice has none left.
 */
export async function freePort(): Promise<number> {
  const { first, size } = portSlice();
  // The last port of the slice has its neighbour in the next slice: never handed out.
  const candidates = size - 1;
  const start = Math.floor(Math.random() * candidates);
  for (let i = 0; i < candidates; i += 1) {
    const port = first + ((start + i) % candidates);
    if (handedOut.has(port) || handedOut.has(port + 1)) continue;
    if ((await bindable(port)) && (await bindable(port + 1))) {
      handedOut.add(port);
      handedOut.add(port + 1);
      return port;
    }
  }
  throw new Error(`no free port left in ${first}..${first + size - 1} (this test process has handed out or reserved ${handedOut.size})`);
}

/**
 * The three ports an embedded server listens on (gRPC, web UI, the frontend's HTTP API), each free:
 * a server given only the gRPC port takes port + 1 for its HTTP API, which nothing checked was free.
 */
export async function freeServerPorts(): Promise<{ WARDEN_TEMPORAL_PORT: string; WARDEN_TEMPORAL_UI_PORT: string; WARDEN_TEMPORAL_HTTP_PORT: string }> {
  return { WARDEN_TEMPORAL_PORT: String(await freePort()), WARDEN_TEMPORAL_UI_PORT: String(await freePort()), WARDEN_TEMPORAL_HTTP_PORT: String(await freePort()) };
}
