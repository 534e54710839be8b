/**
 * Attack: the foundation pack's "deny destructive tools" ("No destructive tools", policies/README)
 * against MCP tools. The README says an MCP call gets "policy on the tool's descriptor (its
 * annotations, or the task file's overrides; a tool that declares nothing is destructive and
 * open-world)". But the policy request carries no descriptor: "destructive tools" is a name glob
 * (`*.delete`, `*.remove`, …, policies/engine/rule-syntax.ts), so MCP's usual names
 * (`deleteIssue` → `tickets.delete-issue`, `delete_file`, `purgeAll`) are never destructive to a
 * rule, whatever the server declares and whatever the task file overrides.
 *
 * Expected: a tool whose descriptor is destructive (declared by the server, set by the task
 * file's override, or by declaring nothing) is denied by "deny destructive tools".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { startHostileHttpMcpServer, textResult, type HostileServer } from '../support/hostile-http-mcp-server';

let env: WardenTestEnv;
let server: HostileServer;
beforeAll(async () => {
  env = await startWardenTestEnv();
  server = await startHostileHttpMcpServer({
    tools: [
      { name: 'delete', annotations: { destructiveHint: true } },
      { name: 'deleteIssue', annotations: { readOnlyHint: false, destructiveHint: true } },
      { name: 'delete_file', annotations: { readOnlyHint: false, destructiveHint: true } },
      { name: 'purgeAll' },
    ],
    onCall: (call, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(textResult(call.id, `${call.name}: gone`));
    },
  });
});
afterAll(async () => {
  await server?.close();
  await env?.close();
});

describe('"deny destructive tools" (the foundation pack) on MCP tools', () => {
  it.each([
    ['delete', 'tickets.delete', 'named like a destructive family (the control: denied today)'],
    ['deleteIssue', 'tickets.delete-issue', 'declared destructive by the server and by the task file'],
    ['delete_file', 'tickets.delete_file', 'declared destructive by the server'],
    ['purgeAll', 'tickets.purge-all', 'declaring nothing (README: "treated as destructive")'],
  ])('%s (%s), %s, is denied', async (mcpName, wardenName) => {
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'triage my tickets',
      agent: { name: 'triager', model: { driver: 'scripted', script: [{ tool: wardenName, args: { id: 7 } }, { final: 'done' }] } },
      tools: { mcp: { tickets: { url: server.url, tools: { deleteIssue: { annotations: { destructiveHint: true } } } } } },
      grants: { tools: [wardenName] },
      resources: { workspace: makeTempDir('mcp-destructive') },
      limits: { onDeny: 'continue', toolTimeout: '20s' },
    });
    const step = result.steps[0]!;
    expect({ decision: step.decision, reachedServer: server.calls.includes(mcpName) }).toEqual({ decision: 'deny', reachedServer: false });
  });
});
