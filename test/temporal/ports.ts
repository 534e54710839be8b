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
