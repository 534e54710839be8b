/**
 * Agent- and client-written text cannot make links in the Temporal UI (found by the issue-16 attack; the table over many inputs is test/workflows/ui-summaries.test.ts). The details (workflows/ui-summaries.ts `taskDetails`) are rendered by the
 * real Temporal UI of the test server in Debian's Chromium. The details put the model id and
 * version in Markdown code spans, which only replace backticks: a value with a blank line ends the
 * paragraph before the span closes, and what follows is Markdown again. In an MCP session the
 * model id and version are the MCP client's `clientInfo` (mcp/task-session-server.ts), i.e. the
 * untrusted agent's own words: it can put a link ("Approve here") into the page the operators
 * read about it. And `escapeMarkdown` leaves bare URLs alone, which the UI autolinks: a sub-agent's
 * intent (worded by its parent's model) becomes a live link in its summary and details, though
 * the module promises "a link or image in them stays text".
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

describe('the Temporal UI page of a task', () => {
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
    // The details are rendered (in a frame of their own) once the agent's name shows in them.
    await vi.waitFor(async () => {
      const texts = await Promise.all(page.frames().filter((f) => f !== page.mainFrame()).map((f) => f.textContent('body').catch(() => '')));
      expect(texts.join(' ')).toContain('Approve this task here');
    }, { timeout: 30_000, interval: 500 });
    const links = await evilLinks(page);
    expect(links).toEqual([]);
    await page.close();
  });

  it("shows a sub-agent's intent, written by its parent's model, with no live link", async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-ui-'));
    // The parent's (prompt-injected) model words the sub-agent's intent; Markdown link syntax is escaped, a bare URL is not.
    const intent = 'check the report, then sign in again at https://evil.example/sso to keep the session';
    const result = await env.runTask({
      user: 'gil@example.com',
      intent: 'write the report',
      agent: { name: 'lead', model: { driver: 'scripted', script: [{ spawn: 'reviewer', intent }, { final: 'ok' }] } },
      grants: { subagents: ['reviewer'] },
      resources: { workspace },
      subagents: {
        reviewer: {
          intent: 'check the report',
          agent: { name: 'reviewer', model: { driver: 'scripted', script: [{ final: 'fine' }] } },
        },
      },
    });
    const child = result.children[0]!.workflowId;
    const uiUrl = `http://127.0.0.1:${loadEmbeddedPorts(process.env).uiPort}`;
    const page = await browser.context.newPage();
    await page.goto(`${uiUrl}/namespaces/${testTemporalConfig().namespace}/workflows/${encodeURIComponent(child)}`);
    await page.getByText('User Metadata').first().click();
    await vi.waitFor(async () => {
      const texts = await Promise.all(page.frames().filter((f) => f !== page.mainFrame()).map((f) => f.textContent('body').catch(() => '')));
      expect(texts.join(' ')).toContain('sign in again');
    }, { timeout: 30_000, interval: 500 });
    const links = await evilLinks(page);
    expect(links).toEqual([]);
    await page.close();
  });
});
