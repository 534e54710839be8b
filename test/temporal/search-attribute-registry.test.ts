/**
 * Warden's search attributes on the embedded server, on servers of its own (own ports and state
 * folders, never the run's server): registered when it starts a server, also on a database that
 * predates them (start-dev applies its flags only when it creates the database), and on a server
 * it reuses; a conflicting type is named, and clients leave such an attribute out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { registeredSearchAttributes } from '../../client/registered-search-attributes';
import { ensureTemporalServer, stopEmbeddedServer } from '../../temporal/embedded-server';
import { ensureSearchAttributes } from '../../temporal/search-attribute-registry';
import { WARDEN_SEARCH_ATTRIBUTE_TYPES } from '../../workflows/search-attributes';
import { freeServerPorts } from './ports';

const created: string[] = [];
const servers: string[] = [];
afterAll(async () => {
  for (const dir of servers) await stopEmbeddedServer(dir).catch(() => undefined);
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

function stateDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `warden-sa-${name}-`));
  created.push(dir);
  return dir;
}

const ALL = Object.keys(WARDEN_SEARCH_ATTRIBUTE_TYPES).sort();

async function withConnection<T>(address: string, use: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await use(connection);
  } finally {
    await connection.close();
  }
}

const customNames = (address: string) =>
  withConnection(address, async (c) => Object.keys((await c.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {}).filter((n) => n.startsWith('Warden')).sort());

/** A list query on the attribute succeeds (the frontend knows it), or the error message. */
const queryable = (address: string, name: string) =>
  withConnection(address, async (c) => {
    try {
      await c.workflowService.countWorkflowExecutions({ namespace: 'default', query: `${name} = "x"` });
      return 'ok';
    } catch (error) {
      return (error as Error).message;
    }
  });

describe('search attributes on the embedded server', () => {
  it('registers them on start, again on a database that lost one, and on a reused server', async () => {
    const env = await freeServerPorts();
    const dir = stateDir('own');
    servers.push(dir);
    const log: string[] = [];
    const server = await ensureTemporalServer({ env, stateDir: dir, log: (line) => log.push(line) });
    expect(server.started).toBe(true);
    expect(await customNames(server.address)).toEqual(ALL);
    expect(await queryable(server.address, 'WardenStatus')).toBe('ok');

    // The database outlives the server; start-dev ignores its flags on an existing database.
    await withConnection(server.address, (c) => c.operatorService.removeSearchAttributes({ namespace: 'default', searchAttributes: ['WardenStatus'] }));
    await stopEmbeddedServer(dir);
    const restarted = await ensureTemporalServer({ env, stateDir: dir, log: (line) => log.push(line) });
    expect(restarted.started).toBe(true);
    expect(await customNames(restarted.address)).toEqual(ALL);
    expect(await queryable(restarted.address, 'WardenStatus')).toBe('ok');
    expect(log.join('\n')).toContain('registered search attributes WardenStatus');

    // Someone else's server on the port (another state folder reuses it): registered too.
    await withConnection(restarted.address, (c) => c.operatorService.removeSearchAttributes({ namespace: 'default', searchAttributes: ['WardenModel'] }));
    const reused = await ensureTemporalServer({ env, stateDir: stateDir('other'), log: () => undefined });
    expect(reused.reused).toBe(true);
    expect(await customNames(reused.address)).toEqual(ALL);

    // A conflicting type is named, and a client leaves that attribute out (a start would fail otherwise).
    await withConnection(reused.address, async (c) => {
      await c.operatorService.removeSearchAttributes({ namespace: 'default', searchAttributes: ['WardenPacks'] });
      await c.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes: { WardenPacks: 2 /* Keyword, not KeywordList */ } });
      await expect(ensureSearchAttributes(c, 'default')).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', message: expect.stringContaining('WardenPacks exists in namespace default as INDEXED_VALUE_TYPE_KEYWORD, but Warden needs KeywordList') });
      const names = await registeredSearchAttributes(new Client({ connection: c }));
      expect([...names].sort()).toEqual(ALL.filter((n) => n !== 'WardenPacks'));
    });
  }, 240_000);
});
