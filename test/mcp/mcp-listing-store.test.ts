/**
 * Pinned tool lists stored once by their pin (mcp/mcp-listing-store.ts) and read back before an
 * activity runs (activities/pinned-listings.ts), on the SQLite state database and on PostgreSQL:
 * a list comes back only if it hashes to the pin it was asked for and belongs to the server the
 * reference names; every other case is a typed refusal, never a repaired or partial list.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../custody/canonical-json';
import { createMcpListingStore } from '../../mcp/mcp-listing-store';
import { pinToolListing } from '../../mcp/mcp-tool-listing';
import { listingRefOf, type McpToolListing } from '../../mcp/pinned-tool-list';
import { taskWithPinnedListings, withPinnedListings } from '../../activities/pinned-listings';
import { createBlobStore } from '../../state/blob-store';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import type { Task } from '../../task/task-schema';
import { parseTask } from '../../task/load-task-file';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;
let sqlite: SqlDatabase;
const dir = mkdtempSync(join(tmpdir(), 'warden-mcp-listings-'));
beforeAll(async () => {
  pg = await createTestDatabase();
  sqlite = openSqliteDatabase(join(dir, 'state.db'));
  await migrate(sqlite);
}, 120_000);
afterAll(async () => {
  await sqlite?.close();
  await pg?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let serial = 0;
/** A fresh listing per call (so no earlier test stored it), `descriptionChars` long per tool. */
function listingOf(server: string, descriptionChars = 40): McpToolListing {
  serial += 1;
  const raw = Array.from({ length: 3 }, (_, i) => ({ name: `tool${i}`, description: `#${serial} ${'d'.repeat(descriptionChars)}`, inputSchema: { type: 'object' }, annotations: { readOnlyHint: i === 0 } }));
  return pinToolListing(server, 'http://127.0.0.1:1/mcp', raw, { name: 'srv', version: '1' });
}

const BACKENDS: [string, () => SqlDatabase][] = [
  ['PostgreSQL', () => pg.db],
  ['SQLite', () => sqlite],
];

describe.each(BACKENDS)('on %s', (_name, db) => {
  it('a list comes back by its pin, on any store instance over the same database, checked', async () => {
    for (const chars of [0, 40, 8192]) {
      const listing = listingOf('index', chars);
      await createMcpListingStore(createBlobStore(db())).put(listing);
      // Another worker: no cache, only the database.
      const read = await createMcpListingStore(createBlobStore(db())).get(listingRefOf(listing));
      const { serverInfo: _info, ...pinned } = listing;
      expect(read).toEqual(pinned);
    }
  });

  const refusals: [string, (blobs: ReturnType<typeof createBlobStore>, listing: McpToolListing) => Promise<{ server: string; transport: string; hash: string }>, string][] = [
    ['no list stored under the pin', async (_blobs, listing) => listingRefOf(listing), 'ERR_MCP_LISTING_MISSING'],
    [
      'the stored bytes edited in the database',
      async (blobs, listing) => {
        await blobs.put(canonicalBytes(listing.tools));
        await db().run('UPDATE warden_blobs SET content = $1 WHERE sha256 = $2', [canonicalBytes([{ ...listing.tools[0], description: 'rug pulled' }]), listing.hash]);
        return listingRefOf(listing);
      },
      'ERR_MCP_PIN_MISMATCH',
    ],
    [
      'a blob that is not a tool list',
      async (blobs) => ({ server: 'index', transport: 'stdio', hash: (await blobs.put(Buffer.from(`{"not":"tools","n":${serial}}`))).sha256 }),
      'ERR_MCP_PIN_MISMATCH',
    ],
    [
      'a blob that is not JSON',
      async (blobs) => ({ server: 'index', transport: 'stdio', hash: (await blobs.put(Buffer.from(`not json ${serial}`))).sha256 }),
      'ERR_MCP_PIN_MISMATCH',
    ],
    [
      'the same tools in bytes that are not their canonical JSON',
      async (blobs, listing) => ({ ...listingRefOf(listing), hash: (await blobs.put(Buffer.from(JSON.stringify(listing.tools, null, 2)))).sha256 }),
      'ERR_MCP_PIN_MISMATCH',
    ],
    [
      "another server's list under this server's name",
      async (blobs, listing) => {
        const other = listingOf('other');
        await blobs.put(canonicalBytes(other.tools));
        return { ...listingRefOf(listing), hash: other.hash };
      },
      'ERR_MCP_PIN_MISMATCH',
    ],
  ];

  it.each(refusals)('refused: %s', async (_case, arrange, code) => {
    const blobs = createBlobStore(db());
    const ref = await arrange(blobs, listingOf('index'));
    await expect(createMcpListingStore(blobs).get(ref)).rejects.toMatchObject({ code, details: expect.objectContaining({ server: 'index', pin: ref.hash }) });
  });

  it('a list whose tools do not hash to its pin is not stored', async () => {
    const listing = listingOf('index');
    const forged = { ...listing, tools: [{ ...listing.tools[0]!, description: 'changed after pinning' }] };
    await expect(createMcpListingStore(createBlobStore(db())).put(forged)).rejects.toMatchObject({ code: 'ERR_MCP_PIN_MISMATCH' });
  });
});

describe('an activity input carrying pins', () => {
  const base = parseTask(
    {
      user: 'sam@example.com',
      intent: 'search',
      agent: { name: 'searcher', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { mcp: { index: { url: 'http://127.0.0.1:1/mcp' } } },
      grants: { tools: ['index.tool0'] },
    },
    'test-task.yaml',
    dir,
  );
  const withPins = (listing: McpToolListing): Task => ({ ...base, tools: { ...base.tools, mcpPins: [listingRefOf(listing)] } });

  it('gets the task as pinned, read back by digest; inputs without pins pass untouched', async () => {
    const store = createMcpListingStore(createBlobStore(sqlite));
    const listing = listingOf('index');
    await store.put(listing);
    const seen: unknown[] = [];
    const activities = withPinnedListings(store, { async probe(input: { task: Task }) { seen.push(input.task.tools.mcpPinned); return input.task.tools.mcpPins; } });
    expect(await activities.probe({ task: withPins(listing) })).toEqual([listingRefOf(listing)]);
    expect(seen[0]).toEqual([{ server: 'index', transport: listing.transport, tools: listing.tools, hash: listing.hash }]);
    const legacy = { ...base, tools: { ...base.tools, mcpPinned: [listing] } };
    expect(await taskWithPinnedListings(store, legacy)).toBe(legacy);
    expect(await taskWithPinnedListings(undefined, base)).toBe(base);
  });

  it('fails closed with the code as the activity failure type: no store, or a pin not stored', async () => {
    const listing = listingOf('index');
    const probe = async (_input: { task: Task }) => 'ran';
    for (const store of [undefined, createMcpListingStore(createBlobStore(sqlite))]) {
      const failure = await withPinnedListings(store, { probe }).probe({ task: withPins(listing) }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'ERR_MCP_LISTING_MISSING', nonRetryable: true });
    }
  });
});
