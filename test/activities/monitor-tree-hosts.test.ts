/**
 * `beginMonitoring` for a sub-agent (issue 14): the task is the tree. A sub-agent without a usable
 * baseline of its own is watched with the hosts of its nearest ancestor that has one, named by
 * its grant's `act` chain (real grants, signed and delegated, in a real SQLite grant store;
 * baselines learnt into a real state database). Table over depth (child, grandchild) and which
 * agents have a baseline; failure paths: an ancestor's baseline that does not parse is passed over,
 * a grant that cannot be read fails closed (`ERR_MONITOR_TREE_UNKNOWN`).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import { learnBaselines } from '../../monitoring/baseline';
import { createBaselineStore, type BaselineStore } from '../../monitoring/baseline-store';
import { migrate } from '../../state/migrations';
import type { SqlDatabase } from '../../state/sql-database';
import { openSqliteDatabase } from '../../state/sqlite-database';
import type { TaskResult } from '../../task/task-run';
import { childGrantInput, createAuthority, type Authority } from '../identity/identity-test-kit';

let authority: Authority;
let db: SqlDatabase;
let baselines: BaselineStore;

/** `runs` completed runs of `agent`, each fetching from `host`. */
function runsOf(agent: string, host: string, runs: number): TaskResult[] {
  return Array.from({ length: runs }, (_, r) => ({
    workflowId: `w-${agent}-${r}`,
    runId: 'r',
    agent,
    model: { id: 'm', version: '1' },
    depth: 0,
    status: 'completed' as const,
    steps: [{ index: 0, turn: 0, kind: 'tool' as const, tool: 'http.fetch', args: { url: `https://${host}/status` }, decision: 'allow' as const, reason: 'ok', executed: true, output: 'x', startedAt: '2026-11-30T10:00:00.000Z', durationMs: 1 }],
    children: [],
    final: null,
  }));
}

beforeAll(async () => {
  authority = await createAuthority('warden-tree-hosts-');
  db = openSqliteDatabase(join(authority.stateDir, 'state.db'));
  await migrate(db);
  baselines = createBaselineStore(db);
  // Usable (5+ runs): root-a, mid-b; too young to judge by (2 runs): young.
  await baselines.put(learnBaselines([...runsOf('root-a', 'api.root.example', 6), ...runsOf('mid-b', 'api.mid.example', 5), ...runsOf('young', 'api.young.example', 2)], '2026-11-30T00:00:00Z').baselines, 'test');
  await db.run("INSERT INTO warden_baselines (agent, tasks, baseline, learned_at, learned_by) VALUES ('garbled', 9, '{\"version\":1}', 'x', 'y')");
});
afterAll(async () => {
  await db?.close();
  authority?.close();
});

/** Issues the grants root → each of `chain`, saves them, and returns the last one. */
async function grantChain(root: string, chain: string[]): Promise<IssuedGrant> {
  const wide = { tools: ['fs.read'], subagents: ['checker'], hosts: [], databases: [] };
  let grant = await issueTaskGrant(authority.keystore, { ...childGrantInput(authority.root, root), parent: undefined, user: 'alice@example.com', grants: { ...wide, subagents: chain } } as never);
  await authority.stores.grants.saveGrant(grant);
  for (const [i, name] of chain.entries()) {
    grant = await issueTaskGrant(authority.keystore, childGrantInput(grant, name, { grants: { ...wide, subagents: chain.slice(i + 1) } }));
    await authority.stores.grants.saveGrant(grant);
  }
  return grant;
}

const activities = () => createActivities({ sandbox: undefined as never, stateDir: authority.stateDir, identity: { keystore: authority.keystore, stores: authority.stores }, monitor: { baselines, alerts: undefined as never } });

describe('beginMonitoring: a sub-agent is watched with its nearest baselined ancestor’s hosts', () => {
  it.each([
    // [what, root, chain down to the sub-agent watched, expected treeHosts agent and hosts, or undefined]
    ['a child without a baseline under a baselined root', 'root-a', ['kid'], { agent: 'root-a', hosts: ['api.root.example'] }],
    ['a grandchild whose parent has no baseline either', 'root-a', ['kid', 'grandkid'], { agent: 'root-a', hosts: ['api.root.example'] }],
    ['a grandchild whose parent has one: the nearest wins', 'root-a', ['mid-b', 'grandkid'], { agent: 'mid-b', hosts: ['api.mid.example'] }],
    ['a child whose own baseline is too young to judge by', 'root-a', ['young'], { agent: 'root-a', hosts: ['api.root.example'] }],
    ['a grandchild whose parent’s baseline does not parse: passed over', 'root-a', ['garbled', 'grandkid'], { agent: 'root-a', hosts: ['api.root.example'] }],
    ['a child with no baselined ancestor: a new agent, as its root', 'stranger', ['kid'], undefined],
    ['a grandchild with no baselined ancestor', 'stranger', ['young', 'grandkid'], undefined],
  ] as const)('%s', async (_what, root, chain, expected) => {
    const grant = await grantChain(root, [...chain]);
    const setup = await activities().beginMonitoring({ workflowId: grant.claims.workflow_id, agent: chain.at(-1)!, sentences: [], grantId: grant.claims.jti });
    expect(setup.treeHosts === undefined ? undefined : { agent: setup.treeHosts.agent, hosts: setup.treeHosts.hosts }).toEqual(expected);
  });

  it('a sub-agent with a usable baseline of its own is judged by it alone (no tree hosts)', async () => {
    const grant = await grantChain('root-a', ['mid-b']);
    const setup = await activities().beginMonitoring({ workflowId: grant.claims.workflow_id, agent: 'mid-b', sentences: [], grantId: grant.claims.jti });
    expect(setup.baseline?.agent).toBe('mid-b');
    expect(setup.treeHosts).toBeUndefined();
  });

  it('a sub-agent whose grant cannot be read fails closed, naming the grant', async () => {
    await expect(activities().beginMonitoring({ workflowId: 'w/kid-1', agent: 'kid', sentences: [], grantId: 'no-such-grant' })).rejects.toMatchObject({
      type: 'ERR_MONITOR_TREE_UNKNOWN',
      message: expect.stringContaining('no-such-grant'),
    });
  });
});
