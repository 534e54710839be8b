/**
 * Attack (s22, atk3): a hostile stdio MCP server makes the worker (root on CI) write a file of
 * its choosing, with bytes of its choosing, in a host folder outside the sandbox, through the undo
 * of its own failed call.
 *
 * A failed stdio MCP call is undone by writing back, by path, what the upper folder held before it
 * (`undoOverlayCall`, recovery/overlay-undo.ts): each record's path is checked for links
 * (`resolveConfined(..., 'refuse')`), then `mkdir`, then `writeFileAtomic` (lstat, a temporary
 * file opened beside the target, rename), every step by path again. The server is still running
 * while its call is undone, so it swaps a folder it made in the workspace with a link to a host
 * folder (renameat2 RENAME_EXCHANGE, the name never missing) without end: the check sees the
 * folder, the write goes through the link. Here the host folder holds `victim` ("original"); the
 * server's folders hold `victim` ("PAYLOAD"), so the undo replaces the host file (or leaves its
 * temporary file beside it). Aimed at /root/.ssh, /etc/cron.d or Warden's state folder this is the
 * worker's user's full power.
 *
 * Secure behaviour asserted: the host folder is exactly as it was (same names, same file, same bytes).
 */
import { lstat, mkdtemp, readdir, readFile, writeFile, chmod } from 'node:fs/promises';
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

async function stateOf(folder: string) {
  const victim = await lstat(join(folder, 'victim'));
  return { names: (await readdir(folder)).sort(), ino: victim.ino, content: await readFile(join(folder, 'victim'), 'utf8') };
}

describe('the undo of a failed stdio MCP call', () => {
  it('never writes through a link the server swaps in', async () => {
    const hostFolder = await mkdtemp(join(tmpdir(), 'warden-host-victim-'));
    await chmod(hostFolder, 0o700);
    await writeFile(join(hostFolder, 'victim'), 'original', { mode: 0o600 });
    const before = await stateOf(hostFolder);
    const workspace = await mkdtemp(join(tmpdir(), 'warden-undo-race-'));
    const attempts = Array.from({ length: 8 }, () => ({ tool: 'racer.probe', args: { mode: 'fail', keep: true } }));
    const r = await env.runTask({
      user: 'dana@example.com',
      intent: 'tidy the workspace',
      agent: {
        name: 'racer-agent',
        model: { driver: 'scripted', script: [{ tool: 'racer.probe', args: { mode: 'arm', target: hostFolder, file: 'victim', content: 'PAYLOAD', keep: true } }, ...attempts, { final: 'done' }] },
      },
      tools: { mcp: { racer: { command: 'node', args: [join(FIXTURES, 'capture-race-server.mjs')] } } },
      grants: { tools: ['racer.probe'] },
      // The foundation pack refuses an MCP tool that does not declare its effects; this one is a writer by design.
      policyPacks: [],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '5m', onDeny: 'continue' },
      resources: { workspace },
    });
    const steps = r.steps.map((s) => `${s.tool} ${s.error?.code ?? 'ok'} ${(s.error?.message ?? '').slice(0, 160)}`);
    expect(await stateOf(hostFolder), steps.join('\n')).toEqual(before);
  });
});
