/**
 * Small real parts the attack tests share: a loopback HTTP server that holds a request until the
 * test lets it go (to keep a task alive at a known point, waiting on events, not clocks), and a
 * reader for the activity results recorded in a workflow's history.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';

export interface HoldingServer {
  port: number;
  host: string;
  /** Resolves with the request line once the first request arrives. */
  arrived: Promise<string>;
  /** Answers the held request (200, `body`). */
  release(body?: string): void;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 that holds the first request until `release()`; later requests get 200 at once. */
export async function startHoldingServer(onArrive?: (req: IncomingMessage) => void | Promise<void>): Promise<HoldingServer> {
  let arrive!: (line: string) => void;
  const arrived = new Promise<string>((resolve) => (arrive = resolve));
  let held: ServerResponse | undefined;
  let first = true;
  let releasedBody: string | undefined;
  const server: Server = createServer((req, res) => {
    if (!first) {
      res.end('ok');
      return;
    }
    first = false;
    void (async () => {
      await onArrive?.(req);
      if (releasedBody !== undefined) res.end(releasedBody);
      else held = res;
      arrive(`${req.method} ${req.url}`);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    arrived,
    release(body = 'released') {
      releasedBody = body;
      held?.end(body);
      held = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        held?.end('closing');
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Every activity result recorded in the workflow's history, decoded from JSON payloads. */
export async function activityResults(client: Client, workflowId: string): Promise<unknown[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const out: unknown[] = [];
  for (const event of history.events ?? []) {
    const payload = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    if (payload?.data) out.push(JSON.parse(Buffer.from(payload.data).toString('utf8')));
  }
  return out;
}

/** Waits until `probe` returns a value (polling the server's state, not guessing a time). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, tries = 400): Promise<T> {
  for (let i = 0; i < tries; i += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}
