/**
 * A tool that calls a `warden.*` capability it was not given is refused as before (ERR_TOOL_THREW,
 * nothing reaches the host), and the error now says what happened: which capability, which tool,
 * and how to declare and grant it. It used to be V8's `TypeError: Cannot read properties of
 * undefined (reading 'read')` (`warden.fs` undefined) or `warden.fs.write is not a function`.
 *
 * One row per capability, each tried with its namespace absent (nothing of it granted) and, where
 * the namespace has other members, present without it. Real parts: the sandbox host process, a
 * workspace folder, a loopback HTTP server, a SQLite file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { makeTempDir, outputOf, startLoopbackServer, toolCall, type LoopbackServer } from './sandbox-test-kit';

let client: SandboxClient;
let workspace: string;
let database: string;
let server: LoopbackServer;

beforeAll(async () => {
  client = await SandboxClient.start();
  workspace = makeTempDir('undeclared');
  fs.writeFileSync(path.join(workspace, 'note.txt'), 'inside');
  database = path.join(workspace, 'shop.db');
  const db = new Database(database);
  db.exec('CREATE TABLE items (name TEXT)');
  db.close();
  server = await startLoopbackServer((_req, res) => res.end('reached'));
});

afterAll(async () => {
  await client.close();
  await server.close();
  fs.rmSync(workspace, { recursive: true, force: true });
});

interface Row {
  capability: string;
  /** A call of it, as tool code writes it. */
  call: () => string;
  /** A grant of another member of the same namespace only, when the namespace has one. */
  sibling?: () => CapabilityGrant;
  /** What the grant also needs, as the message says it. */
  needs: string;
}

const ROWS: Row[] = [
  { capability: 'fs.read', call: () => 'warden.fs.read("note.txt")', sibling: () => ({ fs: { root: workspace, read: false, write: false, list: true } }), needs: 'a workspace (resources.workspace)' },
  { capability: 'fs.write', call: () => 'warden.fs.write("made.txt", "x")', sibling: () => ({ fs: { root: workspace, read: true, write: false, list: false } }), needs: 'a workspace (resources.workspace)' },
  { capability: 'fs.list', call: () => 'warden.fs.list(".")', sibling: () => ({ fs: { root: workspace, read: true, write: false, list: false } }), needs: 'a workspace (resources.workspace)' },
  { capability: 'http.fetch', call: () => `await warden.http.fetch("http://127.0.0.1:${server.port}/")`, needs: 'the hosts it reaches (resources.hosts and grants.hosts)' },
  { capability: 'sql.query', call: () => 'warden.sql.query("shop", "SELECT * FROM items")', sibling: () => ({ sql: { databases: { shop: database }, query: false, exec: true } }), needs: 'the databases it opens (resources.databases and grants.databases)' },
  { capability: 'sql.exec', call: () => 'warden.sql.exec("shop", "INSERT INTO items VALUES (\'x\')")', sibling: () => ({ sql: { databases: { shop: database }, query: true, exec: false } }), needs: 'the databases it opens (resources.databases and grants.databases)' },
];

const CASES = ROWS.flatMap((row) => [
  [row.capability, 'nothing of its namespace granted', row, () => ({})] as const,
  ...(row.sibling === undefined ? [] : [[row.capability, 'its namespace granted without it', row, row.sibling] as const]),
]);

function failureOf(response: SandboxRunResponse): { code: string; message: string } {
  if (response.ok) throw new Error(`expected a failure, got ${JSON.stringify(response.output)}`);
  return response.error;
}

describe.each(CASES)('calling %s with %s', (capability, _how, row, grant) => {
  const expected = (tool: string) =>
    `TypeError: warden.${capability} is not available to tool "${tool}": it does not declare the ${capability} capability. ` +
    `Declare it on the tool (tools.custom: capabilities: [${capability}]) and grant it like the built-in of that name ` +
    `(tools.builtin and grants.tools: [${capability}], with ${row.needs})`;

  it('is refused as before (ERR_TOOL_THREW), with an error naming the capability, the tool and how to grant it', async () => {
    const error = failureOf(await client.run({ ...toolCall(`return ${row.call()};`, null, grant()), toolName: 'word-count' }));
    expect(error).toEqual({ code: 'ERR_TOOL_THREW', message: expected('word-count') });
  });

  it('inside the tool it is that TypeError, thrown at the call, and the capability reached nothing', async () => {
    const source = `try { ${row.call()}; return "called"; } catch (error) { return [error instanceof TypeError, error.message]; }`;
    const hitsBefore = server.hits.length;
    const output = outputOf(await client.run(toolCall(source, null, grant())));
    expect(output).toEqual([true, expected('test.tool').slice('TypeError: '.length)]);
    expect(server.hits.length).toBe(hitsBefore);
    expect(fs.existsSync(path.join(workspace, 'made.txt'))).toBe(false);
    const db = new Database(database, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM items').get()).toEqual({ n: 0 });
    db.close();
  });

  it('is still not installed: no own property names it, and warden stays frozen', async () => {
    const [namespace, member] = capability.split('.') as [string, string];
    const source = `const space = warden.${namespace};
      return [Object.keys(warden).includes("${namespace}") && Object.keys(space).includes("${member}"), "${namespace}" in warden && "${member}" in space, Object.isFrozen(warden), Object.isFrozen(space)];`;
    expect(outputOf(await client.run(toolCall(source, null, grant())))).toEqual([false, false, true, true]);
  });
});

describe('a granted capability is what it was (control)', () => {
  it('warden.fs.read reads, next to an fs.write that is not granted', async () => {
    const grant: CapabilityGrant = { fs: { root: workspace, read: true, write: false, list: false } };
    expect(outputOf(await client.run(toolCall('return [warden.fs.read("note.txt"), Object.keys(warden), Object.keys(warden.fs)];', null, grant)))).toEqual(['inside', ['fs'], ['read']]);
  });
});
