/** Free loopback ports for servers the tests start themselves (never 7233: that is the run's server). */
import { createServer } from 'node:net';

/** Ports already handed out in this process: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();

/** A loopback port that was free a moment ago and that no earlier call in this process returned. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * The three ports an embedded server listens on (gRPC, web UI, the frontend's HTTP API), each free:
 * a server given only the gRPC port takes port + 1 for its HTTP API, which nothing checked was free.
 */
export async function freeServerPorts(): Promise<{ WARDEN_TEMPORAL_PORT: string; WARDEN_TEMPORAL_UI_PORT: string; WARDEN_TEMPORAL_HTTP_PORT: string }> {
  return { WARDEN_TEMPORAL_PORT: String(await freePort()), WARDEN_TEMPORAL_UI_PORT: String(await freePort()), WARDEN_TEMPORAL_HTTP_PORT: String(await freePort()) };
}
