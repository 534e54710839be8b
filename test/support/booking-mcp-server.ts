/**
 * A streamable-HTTP MCP server on loopback with `book` and `unbook` (the MCP SDK's own server
 * transport), for tests of what Warden reports of a remote call it stopped or gave up on. How a
 * booking goes is the test's: `book` records `book`, waits for `hold(n)` (n: the how-many-th
 * booking), books and records `booked`; `unbook` removes the seat and records `unbook`; a
 * `notifications/cancelled` records `cancelled`, an HTTP DELETE (session ended) `DELETE`. `hold` may
 * book before it resolves (`book()`), so the booking is made but not yet answered.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';

export interface BookingServer {
  /** The MCP endpoint. */
  url: string;
  /** What happened, in order: book, booked, unbook, cancelled, DELETE. */
  events: string[];
  bookings: Set<string>;
  /** Resolves at the first `unbook`. */
  unbookArrived: Promise<void>;
  /** Resolves at the first `notifications/cancelled`. */
  cancelledArrived: Promise<void>;
  close(): Promise<void>;
}

/** Starts the server; `hold(n, book)` is awaited before the n-th booking is made (unless `hold` made it) and answered. */
export async function startBookingServer(hold: (n: number, book: () => void) => Promise<void>): Promise<BookingServer> {
  const { Server } = await import('@modelcontextprotocol/sdk/server/index.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { CallToolRequestSchema, ListToolsRequestSchema, CancelledNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
  let unbooked!: () => void;
  let cancelled!: () => void;
  const booking: Omit<BookingServer, 'url' | 'close'> = {
    events: [],
    bookings: new Set(),
    unbookArrived: new Promise<void>((resolve) => (unbooked = resolve)),
    cancelledArrived: new Promise<void>((resolve) => (cancelled = resolve)),
  };
  let books = 0;
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  const http: HttpServer = createServer((req, res) => {
    if (req.method === 'DELETE') booking.events.push('DELETE');
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (transport === undefined) {
      const fresh: InstanceType<typeof StreamableHTTPServerTransport> = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, fresh) });
      const mcp = new Server({ name: 'booker', version: '1.0.0' }, { capabilities: { tools: {} } });
      mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
        tools: [
          { name: 'book', description: 'Books a seat.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
          { name: 'unbook', description: 'Cancels a booking.', inputSchema: { type: 'object', properties: { seat: { type: 'string' } }, required: ['seat'] } },
        ],
      }));
      mcp.setNotificationHandler(CancelledNotificationSchema, async () => {
        booking.events.push('cancelled');
        cancelled();
      });
      mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
        const seat = String((request.params.arguments as { seat?: unknown } | undefined)?.seat);
        if (request.params.name === 'unbook') {
          booking.events.push('unbook');
          const had = booking.bookings.delete(seat);
          unbooked();
          return { content: [{ type: 'text' as const, text: had ? `unbooked ${seat}` : `no booking for ${seat}` }] };
        }
        booking.events.push('book');
        books += 1;
        let booked = false;
        const book = () => {
          if (booked) return;
          booked = true;
          booking.bookings.add(seat);
          booking.events.push('booked');
        };
        await hold(books, book);
        book();
        return { content: [{ type: 'text' as const, text: `booked ${seat}` }] };
      });
      void mcp.connect(fresh);
      transport = fresh;
    }
    void transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    ...booking,
    url: `http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`,
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
