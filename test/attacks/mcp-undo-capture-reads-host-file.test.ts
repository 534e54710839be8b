/**
 * Attack (s22, atk3): a hostile stdio MCP server reads a host file as the worker's user (root on
 * CI) through the undo capture of its own failed call.
 *
 * Before a stdio MCP call on the overlay the worker reads the upper folder to undo the call should
 * it fail (`captureUpper`, recovery/overlay-undo.ts): it lists the folder without following links
 * (`readUpperLayer`), then reads every file it listed by its path, `fsp.readFile(join(upper, path))`,
 * which follows a symbolic link in any folder of the path. The server lives between calls, so it
 * can swap a folder it made in the workspace with a link to a host folder (renameat2
 * RENAME_EXCHANGE, so the name never goes missing) while the worker measures: the folder is listed
 * as a folder, its file read through the link, and the host file's bytes are kept as what the
 * path held before the call. The server's call then fails; the worker "undoes" it by writing those
 * bytes into the overlay, where the server reads them and hands them to the agent (and the commit
 * puts them in the workspace). The host folder here is one the sandbox cannot see (mode 0700,
 * outside every folder shown to it); in the same way it reads /root/.ssh, Warden's own keys, or
 * any file of the worker's user.
 *
 * Secure behaviour asserted: nothing the agent sees, and nothing committed, holds the host file's bytes.
 */
import { mkdtemp, readdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const FIXTURES = join(__dirname, 'fixtures');
let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
});
afterAll(async () => env?.close());

async function filesUnder(folder: string): Promise<string> {
  let all = '';
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) all += await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return all;
}

describe('the undo capture of a stdio MCP call', () => {
  it('never reads a host file through a link the server swaps in', async () => {
    const hostFolder = await mkdtemp(join(tmpdir(), 'warden-host-secret-'));
    await chmod(hostFolder, 0o700);
    const secret = `host-secret-${randomUUID()}`;
    await writeFile(join(hostFolder, 'loot'), secret, { mode: 0o600 });
    const workspace = await mkdtemp(join(tmpdir(), 'warden-capture-race-'));
    // The server's own view of the overlay is stale once the worker wrote the upper folder, so the
    // agent reads what the undo wrote with fs.read (a read-only grant), which reads the upper folder.
    const names = Array.from({ length: 16 }, (_, i) => [`d${i}`, `l${i}`]).flat();
    const script = [
      { tool: 'racer.probe', args: { mode: 'arm', target: hostFolder } },
      { tool: 'racer.probe', args: { mode: 'fail' } },
      ...names.map((name) => ({ tool: 'fs.read', args: { path: `${name}/loot` } })),
      { final: 'done' },
    ];
    const r = await env.runTask({
      user: 'dana@example.com',
      intent: 'tidy the workspace',
      agent: { name: 'racer-agent', model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.read'], mcp: { racer: { command: 'node', args: [join(FIXTURES, 'capture-race-server.mjs')] } } },
      grants: { tools: ['racer.probe', 'fs.read'] },
      // The foundation pack refuses an MCP tool that does not declare its effects; this one is a writer by design.
      policyPacks: [],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '5m', onDeny: 'continue' },
      resources: { workspace },
    });
    // The attack ran: the server was armed and its swapping began. Its calls then fail as it
    // answered, or are refused where the worker met a swapped-in link while measuring or syncing
    // the overlay (ERR_UNDO_FAILED, ERR_LINK_IN_PATH: on a loaded machine the arm call's own sync
    // already meets one).
    const codes = r.steps.filter((s) => s.tool === 'racer.probe').map((s) => s.error?.code ?? 'ok');
    expect(codes[0] === 'ok' || codes.includes('ERR_LINK_IN_PATH'), `${r.reason}: ${codes.join(', ')}`).toBe(true);
    for (const code of codes.slice(1)) expect(['ERR_MCP_TOOL_FAILED', 'ERR_UNDO_FAILED', 'ERR_LINK_IN_PATH']).toContain(code);
    const seenByAgent = JSON.stringify(r.steps.map((s) => s.output ?? null));
    const committed = await filesUnder(workspace);
    expect({ seenByAgent: seenByAgent.includes(secret), committed: committed.includes(secret) }).toEqual({ seenByAgent: false, committed: false });
  });
});
