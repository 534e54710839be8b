/**
 * Attack on the Temporal UI details (workflows/ui-summaries.ts `taskDetails`), rendered by the
 * real Temporal UI of the test server in Debian's Chromium. The details put the model id and
 * version in Markdown code spans, which only replace backticks: a value with a blank line ends the
 * paragraph before the span closes, and what follows is Markdown again. In an MCP session the
 * model id and version are the MCP client's `clientInfo` (mcp/task-session-server.ts), i.e. the
 * untrusted agent's own words: it can put a link ("Approve here") into the page the operators
 * read about it.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTaskSession } from '../../mcp/task-session-server';
import { loadEmbeddedPorts } from '../../temporal/temporal-config';
import { parseTask } from '../../task/load-task-file';
import { launchHeadlessChromium, type HeadlessChromium } from '../support/headless-chromium';
import { testTemporalConfig } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let browser: HeadlessChromium;
beforeAll(async () => {
  env = await startWardenTestEnv();
  browser = await launchHeadlessChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await env?.close();
});

/** hrefs of links to evil.example in the page and its frames (the UI renders Markdown in an iframe). */
async function evilLinks(page: Page): Promise<string[]> {
  const out: string[] = [];
  for (const frame of page.frames()) out.push(...(await frame.$$eval('a[href*="evil.example"]', (as) => as.map((a) => `${a.textContent}: ${a.getAttribute('href')}`)).catch(() => [])));
  return out;
}

describe('the Temporal UI page of an MCP session task', () => {
  it('shows the client-chosen model name as text, with no link the agent wrote', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-ui-'));
    const task = parseTask(
      {
        user: 'ide-user@example.com',
        intent: 'edit the notes',
        agent: { name: 'editor', model: { driver: 'mcp-client' } },
        tools: { builtin: ['fs.read'] },
        grants: { tools: ['fs.read'] },
        resources: { workspace },
      },
      'task.yaml',
      REPO_ROOT,
    );
    const session = createTaskSession({ client: env.client, taskQueue: env.taskQueue, task });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await session.server.connect(serverSide);
    // The agent names itself.
    const client = new McpClient({ name: 'ide\n\n[Approve this task here](https://evil.example/approve)\n\n', version: '1' });
    await client.connect(clientSide);
    await client.listTools();
    const workflowId = session.handle!.workflowId;
    await client.close();
    await session.end('done').catch(() => undefined);

    // The test server's web UI (global-setup starts it on the embedded ports).
    const uiUrl = `http://127.0.0.1:${loadEmbeddedPorts(process.env).uiPort}`;
    const { namespace } = testTemporalConfig();
    const page = await browser.context.newPage();
    await page.goto(`${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`);
    await page.getByText('User Metadata').first().click();
    // The details are rendered once the agent's name shows in them.
    await vi.waitFor(async () => {
      const texts = await Promise.all(page.frames().map((f) => f.textContent('body').catch(() => '')));
      expect(texts.join(' ')).toContain('Approve this task here');
    }, { timeout: 30_000, interval: 500 });
    const links = await evilLinks(page);
    expect(links).toEqual([]);
    await page.close();
  });
});
