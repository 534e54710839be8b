/**
 * The one rule both hold paths ask before they hold a call (sandbox/capabilities/grant-refusal.ts):
 * what the task's grants refuse, in the capability's (or the credential's) own words. Table-driven over every way a
 * grant refuses, and the calls it covers, on a real workspace folder (links, a protected folder).
 * The workflow-level test is test/workflows/grant-refusal-before-hold.test.ts.
 */
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionGrantRefusal, capabilityCallRefusal } from '../../../sandbox/capabilities/grant-refusal';
import { loadPolicyEngine } from '../../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../../policies/engine/policy-state';
import { createPolicyGate } from '../../../sandbox/policy-gate';
import type { PolicyGateSpec } from '../../../sandbox/sandbox-messages';
import { TaskSchema, type Task } from '../../../task/task-schema';
import { resolveTool } from '../../../tools/tool-catalog';

const base = realpathSync(mkdtempSync(join(tmpdir(), 'warden-grant-rule-')));
const workspace = join(base, 'workspace');
const state = join(workspace, '.warden');
mkdirSync(state, { recursive: true });
writeFileSync(join(workspace, 'notes.txt'), 'notes');
writeFileSync(join(base, 'outside.txt'), 'outside');
symlinkSync(base, join(workspace, 'up'));
symlinkSync('notes.txt', join(workspace, 'inside-link'));
const guarded = { folders: [state], files: [], readOnly: [] };

const reader = { name: 'peek', description: 'reads', input: { type: 'object' }, source: 'return 1;' };

function task(over: Record<string, unknown>): Task {
  return TaskSchema.parse({
    user: 'dana@example.com',
    intent: 'x',
    agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } },
    tools: { builtin: ['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'sql.exec', 'proc.run'], custom: [{ ...reader, capabilities: ['fs.read', 'sql.exec'] }] },
    grants: { tools: ['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'peek', 'proc.run'], hosts: ['api.example.com', 'undeclared.example'], databases: ['crm', 'ghost'], commands: ['true'] },
    resources: { workspace, hosts: ['api.example.com', 'other.example'], databases: { crm: join(base, 'crm.db'), spare: join(base, 'spare.db') } },
    ...over,
  });
}

type Row = [name: string, over: Record<string, unknown>, tool: string, args: Record<string, unknown>, refusal: { code: string; reason: RegExp } | undefined];

const ROWS: Row[] = [
  // http.fetch
  ['a granted and declared host', {}, 'http.fetch', { url: 'https://api.example.com/v1' }, undefined],
  ['a host granted, not declared', {}, 'http.fetch', { url: 'https://undeclared.example/' }, { code: 'ERR_NETWORK_DENIED', reason: /host undeclared\.example:443 is not granted/ }],
  ['a host declared, not granted', {}, 'http.fetch', { url: 'https://other.example/' }, { code: 'ERR_NETWORK_DENIED', reason: /host "other\.example" is not granted/ }],
  ['no host both granted and declared, a valid URL', { grants: { tools: ['http.fetch'], hosts: ['undeclared.example'] } }, 'http.fetch', { url: 'https://undeclared.example/' }, { code: 'ERR_NETWORK_DENIED', reason: /no host that is both in grants\.hosts and in resources\.hosts/ }],
  ['no host both granted and declared, no scheme (the reproduced case)', { grants: { tools: ['http.fetch'] } }, 'http.fetch', { url: 'example.invalid/x' }, { code: 'ERR_NETWORK_DENIED', reason: /no host that is both/ }],
  ['a URL that is not absolute', {}, 'http.fetch', { url: 'api.example.com/v1' }, { code: 'ERR_NETWORK_DENIED', reason: /not an absolute URL/ }],
  ['a scheme other than http(s)', {}, 'http.fetch', { url: 'ftp://api.example.com/' }, { code: 'ERR_NETWORK_DENIED', reason: /only http and https/ }],
  ['a port the entry does not name', {}, 'http.fetch', { url: 'https://api.example.com:8443/' }, { code: 'ERR_NETWORK_DENIED', reason: /api\.example\.com:8443" is not granted/ }],
  ['credentials in the URL', {}, 'http.fetch', { url: 'https://me:pw@api.example.com/' }, { code: 'ERR_NETWORK_DENIED', reason: /credentials in URLs/ }],
  ['a URL that is not text (left to input validation)', {}, 'http.fetch', { url: ['https://api.example.com/'] }, undefined],
  // fs.*
  ['a file in the workspace', {}, 'fs.read', { path: 'notes.txt' }, undefined],
  ['a file not there yet (a write)', {}, 'fs.write', { path: 'out/new.txt', content: 'x' }, undefined],
  ['a link that stays inside', {}, 'fs.read', { path: 'inside-link' }, undefined],
  ['the workspace listed', {}, 'fs.list', {}, undefined],
  ['a path climbing out', {}, 'fs.read', { path: '../outside.txt' }, { code: 'ERR_PATH_OUTSIDE_WORKSPACE', reason: /climbs out/ }],
  ['an absolute path', {}, 'fs.write', { path: '/etc/passwd', content: 'x' }, { code: 'ERR_PATH_OUTSIDE_WORKSPACE', reason: /absolute paths/ }],
  ['a link leading out', {}, 'fs.read', { path: 'up/outside.txt' }, { code: 'ERR_PATH_OUTSIDE_WORKSPACE', reason: /outside the workspace/ }],
  ["Warden's state folder inside the workspace", {}, 'fs.read', { path: '.warden/keys' }, { code: 'ERR_PATH_OUTSIDE_WORKSPACE', reason: /Warden's own state/ }],
  ['fs with no workspace', { resources: { hosts: [] } }, 'fs.read', { path: 'notes.txt' }, { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: /needs resources\.workspace/ }],
  ['a path that is not text (left to input validation)', {}, 'fs.read', { path: 7 }, undefined],
  ['a workspace folder that is not there', { resources: { workspace: join(base, 'gone') } }, 'fs.read', { path: 'notes.txt' }, { code: 'ERR_PATH_NOT_FOUND', reason: /workspace folder does not exist/ }],
  // sql.*
  ['a database granted and declared', {}, 'sql.query', { database: 'crm', sql: 'SELECT 1' }, undefined],
  ['a database declared, not granted', {}, 'sql.query', { database: 'spare', sql: 'SELECT 1' }, { code: 'ERR_DATABASE_NOT_GRANTED', reason: /database "spare" is not granted/ }],
  ['a database granted, not declared', {}, 'sql.query', { database: 'ghost', sql: 'SELECT 1' }, { code: 'ERR_DATABASE_NOT_GRANTED', reason: /database "ghost" is not granted \(granted and declared: crm\)/ }],
  ['a database named like an Object member', {}, 'sql.query', { database: 'constructor', sql: 'SELECT 1' }, { code: 'ERR_DATABASE_NOT_GRANTED', reason: /not granted/ }],
  // programs, user tools
  ['a granted program', {}, 'proc.run', { command: 'true' }, undefined],
  ['a program not granted', {}, 'proc.run', { command: 'cat' }, { code: 'ERR_COMMAND_NOT_GRANTED', reason: /program "cat" is not granted/ }],
  ['a user tool declaring a capability not granted', {}, 'peek', {}, { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: /does not grant "sql\.exec"/ }],
  ['a user tool given all it declares', { grants: { tools: ['fs.read', 'sql.exec', 'peek'] } }, 'peek', {}, undefined],
];

describe('what the grants refuse, for a proposed action', () => {
  it.each(ROWS)('%s', (_name, over, tool, args, refusal) => {
    const t = task(over);
    const descriptor = resolveTool(t, tool)!;
    const root = t.resources.workspace;
    const got = actionGrantRefusal(t, descriptor, args, { ...(root === undefined ? {} : { workspaceRoot: root }), protected: guarded });
    if (refusal === undefined) expect(got).toBeUndefined();
    else {
      expect(got?.code).toBe(refusal.code);
      expect(got?.reason).toMatch(refusal.reason);
    }
  });
});

describe("the sandbox host's gate asks the same rule before it holds a capability call", () => {
  const rows = ROWS.filter(([, over, tool]) => Object.keys(over).length === 0 && ['fs.read', 'fs.write', 'http.fetch'].includes(tool));
  it.each(rows)('%s', (_name, _over, tool, args, refusal) => {
    const grant = {
      fs: { root: workspace, read: true, write: true, list: true, protectedPaths: guarded.folders },
      http: { allowedHosts: ['api.example.com'] },
    };
    const direct = capabilityCallRefusal(grant, tool as 'fs.read', args);
    // A gate whose rule holds every such call for approval: a call the grant refuses is denied instead.
    const sentences = [`require approval for ${tool}`];
    const spec: PolicyGateSpec = {
      rulesKey: `grant-refusal|${sentences.join('|')}`,
      rules: [...loadPolicyEngine({ sentences }).rules],
      state: emptyPolicyState(),
      agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
      now: '2026-03-02T10:00:00Z',
      seed: { userTexts: ['look around'], trustedAtoms: [] },
      caller: { tool: 'peek', builtin: false, args: {}, argSources: {} },
      approvedRules: [],
      approvedEffects: [],
    };
    const gate = createPolicyGate(
      spec,
      'return 1;',
      grant,
    );
    let thrown: { code?: string } | undefined;
    try {
      gate.check(tool as 'fs.read', args);
    } catch (error) {
      thrown = error as { code?: string };
    }
    const stopped = gate.report().stopped;
    if (refusal === undefined) {
      expect(direct).toBeUndefined();
      expect(stopped?.decision).toBe('approval');
      expect(thrown?.code).toBe('ERR_APPROVAL_REQUIRED');
    } else {
      expect(direct?.code).toBe(refusal.code);
      expect(stopped?.decision).toBe('deny');
      expect(stopped?.matched.map((m) => m.id)).toEqual(['grants']);
      expect(thrown?.code).toBe('ERR_POLICY_DENIED');
    }
  });
});
