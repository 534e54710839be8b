/**
 * The web console in a real browser (Debian's Chromium, headless) against real tasks on the real
 * Temporal server: signing in with the printed token (and failing with a wrong one), a task's
 * timeline with its custody records and their verification, sub-agents, an approval decided from
 * the page (and one denied), agent-written markup shown as text, signing out.
 * The test saves a screenshot: .warden-test/console/console.png.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { approversCommand } from '../../cli/commands/approvers';
import { readApproverKeyFile } from '../../client/approvals';
import { ConsoleData } from '../../console/console-data';
import { startConsoleServer, type ConsoleServer } from '../../console/console-server';
import { agentTaskResult, followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { taskStateQuery } from '../../workflows/definitions';
import { launchHeadlessChromium, type HeadlessChromium } from '../support/headless-chromium';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

export const SCREENSHOT = join(REPO_ROOT, '.warden-test', 'console', 'console.png');
const APPROVER = `sec-lead-${randomUUID().slice(0, 8)}`;
const XSS = '<img src=x onerror="window.__wardenXss = 1"><script>window.__wardenXss = 2</script>';

let env: WardenTestEnv;
let consoleServer: ConsoleServer;
let browser: HeadlessChromium;
let page: Page;
let workspace: string;
let reviewedId: string;
let xssId: string;

function dbWithStaleLeads(): string {
  const file = join(workspace, `crm-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(file);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO leads (stale) VALUES (?)');
  for (let i = 0; i < 50; i++) insert.run(i < 42 ? 1 : 0);
  db.close();
  return file;
}

const leadCount = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM leads').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

function cleanupTask(dbFile: string, agent: string) {
  return parseTask(
    {
      user: 'hana@example.com',
      intent: 'clean up the stale leads',
      agent: { name: agent, model: { driver: 'scripted', id: 'scripted-janitor', script: [{ tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] } },
      tools: { builtin: ['sql.exec'] },
      grants: { tools: ['sql.exec'], databases: ['crm'] },
      resources: { databases: { crm: dbFile } },
    },
    'task.yaml',
    REPO_ROOT,
  );
}

async function pending(handle: { query: (q: typeof taskStateQuery) => Promise<{ pendingApprovals: unknown[] }> }) {
  await vi.waitFor(async () => expect((await handle.query(taskStateQuery)).pendingApprovals).toHaveLength(1), { timeout: 120_000, interval: 200 });
}

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = await mkdtemp(join(tmpdir(), 'warden-console-'));
  await writeFile(join(workspace, 'notes.txt'), 'one two three');
  const reviewed = await env.runTask({
    user: 'hana@example.com',
    intent: 'write the report and have it reviewed',
    agent: {
      name: 'scribe',
      model: { driver: 'scripted', id: 'scripted-scribe', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { tool: 'fs.write', args: { path: 'out/report.md', content: '3 words' } }, { spawn: 'reviewer' }, { final: 'reported' }] },
    },
    tools: { builtin: ['fs.read', 'fs.write', 'fs.list'] },
    grants: { tools: ['fs.read', 'fs.write', 'fs.list'], subagents: ['reviewer'] },
    resources: { workspace },
    subagents: {
      reviewer: {
        intent: 'check the report exists',
        agent: { name: 'reviewer', model: { driver: 'scripted', id: 'scripted-reviewer', script: [{ tool: 'fs.list', args: { path: 'out' } }, { final: 'it is there' }] } },
        tools: { builtin: ['fs.list'] },
        grants: { tools: ['fs.list'] },
      },
    },
  });
  expect(reviewed.status).toBe('completed');
  reviewedId = reviewed.workflowId;
  // An agent that writes markup into its arguments (denied: the tool is not granted).
  const xss = await env.runTask({
    user: 'hana@example.com',
    intent: 'try to inject markup',
    agent: { name: 'mallory', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: XSS, content: XSS } }, { final: 'x' }] } },
    tools: { builtin: ['fs.write', 'fs.read'] },
    grants: { tools: ['fs.read'] },
    resources: { workspace },
  });
  expect(xss.status).toBe('denied');
  xssId = xss.workflowId;

  // A registered approver, as `warden approvers add` makes one (unique per run: the registry outlives runs).
  const keyFile = join(await mkdtemp(join(tmpdir(), 'warden-approver-')), `${APPROVER}.json`);
  const out: string[] = [];
  const add = await approversCommand(['add', APPROVER, '--out', keyFile], { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } });
  expect(add, out.join('')).toBe(0);
  consoleServer = await startConsoleServer({
    data: new ConsoleData({ client: env.client, stateDir: TEST_STATE_DIR, approverKey: await readApproverKeyFile(keyFile), temporalUiUrl: 'http://127.0.0.1:8233' }),
  });
  browser = await launchHeadlessChromium();
  page = await browser.context.newPage();
  page.on('dialog', (dialog) => void dialog.dismiss());
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await consoleServer?.close();
  await env?.close();
});

async function selectTask(workflowId: string) {
  await page.locator(`[data-testid=task-row][data-workflow-id="${workflowId}"] button`).click();
  await page.locator('[data-testid=task-detail] h2', { hasText: workflowId }).waitFor();
  await page.locator('[data-testid=timeline-entry][data-kind=outcome]').first().waitFor();
}

describe('the web console in Chromium', () => {
  it('asks for the login token, refuses a wrong one, and signs in with the right one', async () => {
    await page.goto(consoleServer.url);
    await page.locator('#login').waitFor();
    await page.fill('#token', 'not-the-token');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=login-error]'), { timeout: 60_000 }).toContain('not accepted');
    expect(await page.isVisible('#main')).toBe(false);

    await page.goto(`${consoleServer.url}/#token=${consoleServer.token}`);
    await page.locator('[data-testid=who]', { hasText: `deciding approvals as approver ${APPROVER}` }).waitFor();
    // The token left the address bar at once; it lives in this tab's session storage only.
    expect(page.url()).toBe(`${consoleServer.url}/`);
    // The page's own calls carry it; a call without it is refused.
    expect(await page.evaluate(async () => (await fetch('/api/tasks')).status)).toBe(401);
  });

  it("shows running and past tasks, and a task's timeline with custody records and their verification", async () => {
    await page.locator(`[data-testid=task-row][data-workflow-id="${reviewedId}"]`).waitFor();
    await selectTask(reviewedId);
    const entries = page.locator('[data-testid=timeline-entry]');
    const kinds = new Set(await entries.evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-kind'))));
    expect(kinds).toEqual(new Set(['intent', 'model-turn', 'action', 'decision', 'tool-effect', 'subagent', 'outcome']));
    // Every tool effect names its record, and the ledger verifies.
    const effects = await page.locator('[data-testid=timeline-entry][data-kind=tool-effect]').evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-seq'), n.getAttribute('data-verification'), n.textContent]));
    expect(effects).toHaveLength(3);
    for (const [seq, verification, text] of effects) {
      expect(seq).toMatch(/^\d+$/);
      expect(verification).toBe('checkpointed');
      expect(text).toMatch(/credential jti/);
    }
    expect(await page.textContent('[data-testid=timeline]')).toContain('fs.write ran: ok');
    expect(await page.textContent('[data-testid=task-custody]')).toContain('signatures, hash chain and checkpoints intact');
    expect(await page.textContent('[data-testid=task-subagents]')).toContain(`${reviewedId}/reviewer-2`);
    expect(await page.textContent('[data-testid=timeline]')).toContain('sub-agent');
  });

  it('shows an agent\'s markup as text and runs none of it', async () => {
    await selectTask(xssId);
    const text = await page.textContent('[data-testid=timeline]');
    expect(text).toContain('<img src=x onerror=');
    expect(await page.locator('[data-testid=timeline] img, [data-testid=timeline] script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __wardenXss?: number }).__wardenXss)).toBeUndefined();
  });

  it('approves a held action from the page, as the console\'s approver, and saves a screenshot', async () => {
    const dbFile = dbWithStaleLeads();
    const handle = await env.start(cleanupTask(dbFile, 'janitor'));
    await pending(handle);
    const card = page.locator(`[data-testid=approval][data-workflow-id="${handle.workflowId}"]`);
    await card.waitFor({ timeout: 60_000 });
    expect(await card.locator('[data-testid=approval-args]').textContent()).toContain('DELETE FROM leads WHERE stale = 1');
    expect(await card.textContent()).toContain('never delete more than 10 rows without explicit approval');
    await selectTask(reviewedId);
    mkdirSync(join(REPO_ROOT, '.warden-test', 'console'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await card.locator('[data-testid=approval-reason]').fill('quarterly cleanup');
    await card.locator('[data-testid=approve]').click();
    await expect.poll(() => card.locator('[data-testid=approval-outcome]').textContent(), { timeout: 60_000 }).toBe(`approved as ${APPROVER}`);
    const result = await followAgentTask(handle);
    expect(result.status).toBe('completed');
    expect(result.steps[0]).toMatchObject({ executed: true, approval: { status: 'approved', approver: APPROVER, reason: 'quarterly cleanup' } });
    expect(leadCount(dbFile)).toBe(8);
    // Decided, it leaves the list.
    await expect.poll(() => page.locator(`[data-testid=approval][data-workflow-id="${handle.workflowId}"]`).count(), { timeout: 60_000 }).toBe(0);
  }, 300_000);

  it('denies a held action from the page: nothing changes and the task ends denied', async () => {
    const dbFile = dbWithStaleLeads();
    const handle = await env.start(cleanupTask(dbFile, 'sweeper'));
    await pending(handle);
    const card = page.locator(`[data-testid=approval][data-workflow-id="${handle.workflowId}"]`);
    await card.waitFor({ timeout: 60_000 });
    await card.locator('[data-testid=approval-reason]').fill('not this quarter');
    // Another task is held meanwhile: the card being filled in keeps what was typed.
    const other = await env.start(cleanupTask(dbWithStaleLeads(), 'keeper'));
    try {
      await pending(other);
      await page.locator(`[data-testid=approval][data-workflow-id="${other.workflowId}"]`).waitFor({ timeout: 60_000 });
      expect(await card.locator('[data-testid=approval-reason]').inputValue()).toBe('not this quarter');
    } finally {
      await other.terminate('the test needed it only held');
    }
    await card.locator('[data-testid=deny]').click();
    await expect.poll(() => card.locator('[data-testid=approval-outcome]').textContent(), { timeout: 60_000 }).toBe(`denied as ${APPROVER}`);
    const result = await agentTaskResult(handle);
    expect(result).toMatchObject({ status: 'denied', steps: [{ executed: false, approval: { status: 'denied', approver: APPROVER, reason: 'not this quarter' } }] });
    expect(leadCount(dbFile)).toBe(50);
    await page.locator(`[data-testid=task-row][data-workflow-id="${handle.workflowId}"] .badge.denied`).waitFor({ timeout: 60_000 });
  }, 300_000);

  it('keeps a pending card, and what was typed in it, while its task does not answer the listing', async () => {
    const handle = await env.start(cleanupTask(dbWithStaleLeads(), 'waiter'));
    try {
      await pending(handle);
      const card = page.locator(`[data-testid=approval][data-workflow-id="${handle.workflowId}"]`);
      await card.waitFor({ timeout: 60_000 });
      await card.locator('[data-testid=approval-reason]').fill('typed before the worker got busy');
      // What the listing answers while the task's worker is too busy to answer its query in time.
      let served = 0;
      await page.route('**/api/approvals', (route) => {
        served += 1;
        return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ approver: APPROVER, approvals: [], unanswered: [{ workflowId: handle.workflowId, reason: 'no answer within 2 s' }] }) });
      });
      await vi.waitFor(() => expect(served).toBeGreaterThanOrEqual(2), { timeout: 60_000, interval: 200 });
      await page.unroute('**/api/approvals');
      expect(await card.count()).toBe(1);
      expect(await card.locator('[data-testid=approval-reason]').inputValue()).toBe('typed before the worker got busy');
    } finally {
      await handle.terminate('the test needed it only held');
    }
  }, 300_000);

  it('shows a tampered ledger as tampered, and the records from the break on as broken', async () => {
    // A copy of the ledger with one byte of one of the task's records changed.
    const copy = await mkdtemp(join(tmpdir(), 'warden-console-tampered-'));
    const source = new Database(join(TEST_STATE_DIR, 'custody.db'), { readonly: true });
    await source.backup(join(copy, 'custody.db'));
    source.close();
    cpSync(join(TEST_STATE_DIR, 'custody-keys'), join(copy, 'custody-keys'), { recursive: true });
    const db = new Database(join(copy, 'custody.db'));
    const victim = db.prepare("SELECT seq FROM records WHERE task_id = ? AND body LIKE '%execute_tool fs.write%' ORDER BY seq LIMIT 1").get(reviewedId) as { seq: number };
    db.prepare("UPDATE records SET body = replace(body, 'out/report.md', 'out/report.me') WHERE seq = ?").run(victim.seq);
    db.close();

    const tampered = await startConsoleServer({ data: new ConsoleData({ client: env.client, stateDir: copy }) });
    try {
      const detail = (await (await fetch(`${tampered.url}/api/tasks/${encodeURIComponent(reviewedId)}`, { headers: { authorization: `Bearer ${tampered.token}` } })).json()) as {
        task: { custody: { ok: boolean; problem: { seq: number; kind: string } }; timeline: { seq: number | null; verification: string }[] };
      };
      expect(detail.task.custody).toMatchObject({ ok: false, problem: { seq: victim.seq, kind: 'changed' } });
      for (const entry of detail.task.timeline) {
        if (entry.seq === null) continue;
        expect(entry.verification).toBe(entry.seq >= victim.seq ? 'broken' : 'checkpointed');
      }
      const other = await browser.context.newPage();
      await other.goto(`${tampered.url}/#token=${tampered.token}`);
      await other.locator(`[data-testid=task-row][data-workflow-id="${reviewedId}"] button`).click();
      await other.locator('[data-testid=task-custody] .badge.broken').waitFor();
      expect(await other.textContent('[data-testid=task-custody]')).toContain(`changed at record ${victim.seq}`);
      expect(await other.locator(`[data-testid=timeline-entry][data-seq="${victim.seq}"][data-verification=broken]`).count()).toBeGreaterThan(0);
      await other.close();
    } finally {
      await tampered.close();
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('signs out: the token is gone and the page asks for it again', async () => {
    await page.click('#sign-out');
    await page.locator('#login').waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length)).toBe(0);
    await page.reload();
    await page.locator('#login').waitFor();
    expect(await page.isVisible('#main')).toBe(false);
  });
});
