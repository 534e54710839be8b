/**
 * A user tool's capability the task does not grant is refused at load with advice to fix it
 * (tools/tool-catalog.ts `ungrantedCapabilities`). The advice must work in one round: it said
 * "add it to grants.tools" even when the capability's built-in tool was not declared either, and
 * a grant of an undeclared tool is refused in turn, so following it led to a second error.
 *
 * The class: for every capability, declared or not under tools.builtin, at the root or in a
 * sub-agent, applying exactly the edit the message names leaves no issue about it.
 *
 * And a granted capability with nothing behind it (http.fetch with no host granted and declared,
 * sql.* with no database) loads, since a task may mean it, but is noted: every such call is refused.
 */
import { describe, expect, it } from 'vitest';
import { parseTask, taskNotices } from '../../task/load-task-file';
import { CAPABILITY_NAMES, type CapabilityName } from '../../tools/tool-descriptor';
import { taskFileIssuesOf } from '../support/task-file-issues';

/** Resources behind every capability, so only the grant itself can be missing. */
const RESOURCES = { workspace: '/tmp', hosts: ['api.example.com'], databases: { inv: '/tmp/inv.db' } };
const BEHIND = { hosts: ['api.example.com'], databases: ['inv'] };

const toolWith = (capability: string) => ({ name: 'helper', description: 'helps', input: { type: 'object' }, source: 'return 1;', capabilities: [capability] });
const agent = (name: string) => ({ name, model: { driver: 'scripted', script: [{ final: 'x' }] } });

/**
 * A task whose `helper` declares `capability`; at `where`, the scope with builtin list `builtin`.
 * A sub-agent's parent holds `helper` and the capability itself: a sub-agent gets no more than its
 * parent (identity/delegation.ts), so only then can the sub-agent's task be valid at all.
 */
function taskWith(capability: string, builtin: string[], where: 'root' | 'sub-agent', grantsExtra: string[] = []): Record<string, unknown> {
  const scope = { tools: { builtin, custom: [toolWith(capability)] }, grants: { tools: ['helper', ...grantsExtra], ...BEHIND } };
  const base = { user: 'alice@example.com', intent: 'help', agent: agent('lead'), resources: RESOURCES };
  if (where === 'root') return { ...base, ...scope };
  const parent = { tools: { builtin: [capability], custom: [toolWith(capability)] }, grants: { tools: ['helper', capability], subagents: ['kid'], ...BEHIND } };
  return { ...base, ...parent, subagents: { kid: { intent: 'help', agent: agent('kid'), ...scope } } };
}


/** The task after the edit the message names: each place it says to add the capability to. */
function followed(capability: string, message: string, where: 'root' | 'sub-agent', builtin: string[]): Record<string, unknown> {
  const advice = /\(add it to ([^)]+)\)/.exec(message)?.[1];
  expect(advice, message).toBeDefined();
  const places = advice!.split(/ and to /);
  const declared = places.includes('tools.builtin') ? [...builtin, capability] : builtin;
  const granted = places.includes('grants.tools') ? [capability] : [];
  expect(places.every((p) => p === 'tools.builtin' || p === 'grants.tools'), message).toBe(true);
  return taskWith(capability, declared, where, granted);
}

const ROWS = CAPABILITY_NAMES.flatMap((capability) =>
  (['root', 'sub-agent'] as const).flatMap((where) => [
    { capability, where, declared: false },
    { capability, where, declared: true },
  ]),
);

describe('the advice for an ungranted capability works in one round', () => {
  it.each(ROWS)('$capability, $where, declared under tools.builtin: $declared', ({ capability, where, declared }) => {
    const builtin = declared ? [capability] : [];
    const issues = taskFileIssuesOf(taskWith(capability, builtin, where));
    const about = issues.filter((i) => i.message.includes(`"${capability}"`));
    expect(about, JSON.stringify(issues)).toHaveLength(1);
    expect(about[0]!.message).toContain(declared ? 'add it to grants.tools)' : 'add it to tools.builtin and to grants.tools)');
    const fixed = followed(capability, about[0]!.message, where, builtin);
    expect(taskFileIssuesOf(fixed)).toEqual([]);
    // Nor a spawn that will be refused: the sub-agent asks for nothing its parent lacks.
    expect(taskNotices(parseTask(fixed, 'task.yaml', '/tmp')).filter((n) => n.path.startsWith('subagents.kid.grants'))).toEqual([]);
  });
});

describe('every problem of an ungranted capability in the same round', () => {
  it('an fs capability with no workspace either: both the workspace and the grant are named at once', () => {
    const { workspace: _none, ...noWorkspace } = RESOURCES;
    const messages = taskFileIssuesOf({ ...taskWith('fs.write', [], 'root'), resources: noWorkspace }).map((i) => i.message);
    expect(messages).toContain('file capabilities need resources.workspace');
    expect(messages.some((m) => m.includes('add it to tools.builtin and to grants.tools'))).toBe(true);
  });

  it("a sub-agent's capability its parent lacks: the advice names the parent's grants.tools and tools.builtin too", () => {
    const document = { user: 'a@example.com', intent: 'x', agent: agent('lead'), grants: { subagents: ['kid'] }, resources: RESOURCES, subagents: { kid: { intent: 'x', agent: agent('kid'), tools: { custom: [toolWith('fs.write')] }, grants: { tools: ['helper'] } } } };
    const about = taskFileIssuesOf(document).filter((i) => i.message.includes('"fs.write"'));
    expect(about).toHaveLength(1);
    expect(about[0]!.message).toContain('its parent must grant it too (a sub-agent gets no more than its parent): add it to grants.tools and declare it under tools.builtin');
  });
});

describe('a sub-agent granted more than its parent', () => {
  const task = (kidGrants: Record<string, unknown>, parentGrants: Record<string, unknown> = {}) =>
    parseTask({ user: 'a@example.com', intent: 'x', agent: agent('lead'), tools: { builtin: ['fs.read', 'fs.write'] }, grants: { tools: ['fs.read'], subagents: ['kid'], ...parentGrants }, resources: RESOURCES, subagents: { kid: { intent: 'x', agent: agent('kid'), tools: { builtin: ['fs.read', 'fs.write'] }, grants: kidGrants } } }, 'task.yaml', '/tmp');

  it.each<[string, Record<string, unknown>, string]>([
    ['a tool', { tools: ['fs.read', 'fs.write'] }, 'subagents.kid.grants.tools.1'],
    ['a host', { hosts: ['api.example.com'] }, 'subagents.kid.grants.hosts.0'],
    ['a database', { databases: ['inv'] }, 'subagents.kid.grants.databases.0'],
  ])('%s: loads, with a note that its spawn will be refused', (_what, kidGrants, path) => {
    const notices = taskNotices(task(kidGrants)).filter((n) => n.path === path);
    expect(notices).toHaveLength(1);
    expect(notices[0]!.message).toMatch(/which the task \(its parent\) does not grant in grants\.\w+: a sub-agent gets no more than its parent, so that spawn will be refused \(ERR_DELEGATION_WIDENS\)/);
  });

  it('a sub-agent within its parent: no note', () => {
    expect(taskNotices(task({ tools: ['fs.read'], hosts: ['api.example.com'] }, { hosts: ['api.example.com'] })).filter((n) => n.path.startsWith('subagents.kid.grants'))).toEqual([]);
  });
});

describe('a granted capability with nothing behind it is noted', () => {
  const EMPTY: { name: string; capability: CapabilityName; grants: Record<string, unknown>; resources: Record<string, unknown>; says: RegExp }[] = [
    { name: 'http.fetch with no host granted', capability: 'http.fetch', grants: { hosts: [] }, resources: { hosts: ['api.example.com'] }, says: /no host that is both in grants.hosts and in resources.hosts: every http.fetch call it makes will be refused/ },
    { name: 'sql.query with no database granted', capability: 'sql.query', grants: { databases: [] }, resources: { databases: { inv: '/tmp/inv.db' } }, says: /no database that is both in grants.databases and in resources.databases: every sql.query call/ },
    { name: 'sql.exec with no database granted', capability: 'sql.exec', grants: { databases: [] }, resources: { databases: { inv: '/tmp/inv.db' } }, says: /every sql.exec call/ },
  ];

  const notices = (capability: string, grants: Record<string, unknown>, resources: Record<string, unknown>, through: 'built-in' | 'user tool') => {
    const tools = through === 'built-in' ? { builtin: [capability] } : { builtin: [capability], custom: [toolWith(capability)] };
    const granted = through === 'built-in' ? [capability] : ['helper', capability];
    const task = parseTask({ user: 'a@example.com', intent: 'x', agent: agent('a'), tools, grants: { tools: granted, ...grants }, resources: { workspace: '/tmp', ...resources } }, 'task.yaml', '/tmp');
    return taskNotices(task);
  };

  it.each(EMPTY.flatMap((row) => (['built-in', 'user tool'] as const).map((through) => ({ ...row, through }))))('$name, granted as a $through', (row) => {
    const found = notices(row.capability, row.grants, row.resources, row.through).filter((n) => n.path.startsWith('grants.tools.'));
    expect(found.length, JSON.stringify(found)).toBeGreaterThan(0);
    for (const notice of found) expect(notice.message).toMatch(row.says);
  });

  it.each(['http.fetch', 'sql.query', 'sql.exec'] as const)('%s with its host or database granted and declared: no note', (capability) => {
    expect(notices(capability, BEHIND, { hosts: ['api.example.com'], databases: { inv: '/tmp/inv.db' } }, 'user tool').filter((n) => n.path.startsWith('grants.tools.'))).toEqual([]);
  });
});
