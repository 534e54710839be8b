/**
 * A sub-agent's task is never wider than its parent's, on any field: every pack and rule of its
 * ancestors still applies, every limit only narrows, its tools are the parent's, and grants it
 * asks for beyond the parent's are refused by the delegation rule. Property tests over random
 * tasks; a field added to the task schema without a narrowing rule fails here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wideningsOf } from '../../identity/delegation';
import { deriveSubagentTask } from '../../permissions/derive-subagent-task';
import { LIMIT_NARROWING, narrowLimits, TASK_FIELD_NARROWING, wideningsOfTask } from '../../permissions/task-narrowing';
import { durationToMs } from '../../task/duration';
import { LimitsSchema, SubagentSchema, TaskSchema, type Task } from '../../task/task-schema';

const TOOL_POOL = ['fs.read', 'fs.write', 'fs.list', 'http.fetch', 'sql.query', 'sql.exec'] as const;
const HOSTS = ['api.example.com', '127.0.0.1:8080', 'b.example.com'];
const DATABASES = ['inv', 'crm'];
const SENTENCES = ['deny fs.write', 'never delete more than 10 rows without explicit approval', 'never fetch a URL the user did not give', 'sub-agents may not spawn sub-agents'];
const PACKS = ['foundation', 'enterprise', 'advanced'];

const duration = fc.tuple(fc.integer({ min: 1, max: 600 }), fc.constantFrom('ms', 's', 'm', 'h')).map(([n, u]) => `${n}${u}`);
const limits = fc.record({
  maxSteps: fc.integer({ min: 1, max: 10_000 }),
  deadline: duration,
  toolTimeout: duration,
  toolMemoryMb: fc.integer({ min: 8, max: 1024 }),
  onDeny: fc.constantFrom('stop' as const, 'continue' as const),
  approvalTimeout: duration,
  maxDepth: fc.integer({ min: 0, max: 10 }),
});
const customTool = (name: string) =>
  fc.record({
    name: fc.constant(name),
    description: fc.constant('a tool'),
    source: fc.constantFrom('return 1', 'return 2'),
    capabilities: fc.subarray([...TOOL_POOL]),
    timeout: fc.option(duration, { nil: undefined }),
    memoryMb: fc.option(fc.integer({ min: 8, max: 256 }), { nil: undefined }),
  });
const tools = fc.record({
  builtin: fc.subarray([...TOOL_POOL]),
  custom: fc.tuple(fc.option(customTool('alpha'), { nil: undefined }), fc.option(customTool('beta'), { nil: undefined })).map((ts) => ts.filter((t) => t !== undefined)),
});
const grants = fc.record({
  tools: fc.subarray([...TOOL_POOL, 'alpha', 'beta']),
  subagents: fc.subarray(['kid']),
  hosts: fc.subarray(HOSTS),
  databases: fc.subarray(DATABASES),
});
const agent = (name: string) => fc.constant({ name, model: { driver: 'scripted' as const, script: [{ final: 'ok' }] } });

/** A random parent task with one sub-agent, `kid`, whose declarations are random too. */
const parentTask = fc
  .record({
    limits,
    tools,
    grants,
    policies: fc.subarray(SENTENCES),
    policyPacks: fc.option(fc.subarray(PACKS, { minLength: 1 }), { nil: undefined }),
    snapshot: fc.boolean(),
    kid: fc.record({
      intent: fc.constant('help'),
      agent: agent('kid'),
      tools,
      grants,
      policies: fc.subarray(SENTENCES),
      policyPacks: fc.option(fc.subarray(PACKS), { nil: undefined }),
      limits: fc.record(
        {
          maxSteps: fc.integer({ min: 1, max: 10_000 }),
          deadline: duration,
          toolTimeout: duration,
          toolMemoryMb: fc.integer({ min: 8, max: 1024 }),
          onDeny: fc.constantFrom('stop' as const, 'continue' as const),
          approvalTimeout: duration,
          maxDepth: fc.integer({ min: 0, max: 10 }),
        },
        { requiredKeys: [] },
      ),
    }),
  })
  .map(({ kid, ...rest }) =>
    TaskSchema.parse({
      user: 'alice@example.com',
      intent: 'do it',
      agent: { name: 'parent', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
      ...rest,
      resources: { workspace: '/ws', hosts: HOSTS, databases: { inv: '/inv.db', crm: '/crm.db' } },
      subagents: { kid },
    }),
  );

/** The parent as the delegation rule sees it: its grant. */
function delegationParent(task: Task) {
  return { jti: 'parent', grants: task.grants, limits: {}, exp: 2_000_000_000, depth: 0 };
}

describe('every task field has a narrowing rule', () => {
  it('the rule table covers exactly the task schema and the limits schema', () => {
    expect(Object.keys(TASK_FIELD_NARROWING).sort()).toEqual(Object.keys(TaskSchema.shape).sort());
    expect(Object.keys(LIMIT_NARROWING).sort()).toEqual(Object.keys(LimitsSchema.shape).sort());
  });

  it('every field a sub-agent declares is a task field (so its narrowing rule applies)', () => {
    for (const key of Object.keys(SubagentSchema.shape)) expect(Object.keys(TaskSchema.shape)).toContain(key);
  });
});

describe('deriveSubagentTask (property)', () => {
  it('derives a valid task within its parent on every field; grants beyond the parent are exactly what delegation refuses', () => {
    fc.assert(
      fc.property(parentTask, fc.option(fc.constantFrom('look at this', 'other words'), { nil: undefined }), (parent, intent) => {
        const child = deriveSubagentTask(parent, 'kid', intent);
        expect(TaskSchema.safeParse(child).success).toBe(true);
        const widenings = wideningsOfTask(child, parent);
        expect(widenings.filter((w) => !w.startsWith('grants:'))).toEqual([]);
        const refused = wideningsOf(delegationParent(parent), { grants: child.grants });
        expect(refused.length > 0).toBe(widenings.length > 0);
      }),
      { numRuns: 500 },
    );
  });

  it('judges the child by every pack and rule of the parent plus its own', () => {
    fc.assert(
      fc.property(parentTask, (parent) => {
        const child = deriveSubagentTask(parent, 'kid', undefined);
        for (const pack of parent.policyPacks ?? ['foundation']) expect(child.policyPacks).toContain(pack);
        for (const pack of parent.subagents.kid!.policyPacks ?? []) expect(child.policyPacks).toContain(pack);
        expect(child.policies.slice(0, parent.policies.length)).toEqual(parent.policies);
        expect(child.policies).toEqual(expect.arrayContaining(parent.subagents.kid!.policies));
      }),
      { numRuns: 300 },
    );
  });

  it('a grandchild is within its parent, which is within the root', () => {
    fc.assert(
      fc.property(parentTask, (root) => {
        const child = deriveSubagentTask(root, 'kid', undefined);
        const grandchild = deriveSubagentTask(child, 'kid', undefined);
        expect(wideningsOfTask(grandchild, child).filter((w) => !w.startsWith('grants:'))).toEqual([]);
        expect(wideningsOfTask(grandchild, root).filter((w) => !w.startsWith('grants:'))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('the narrowing check is not vacuous: widening any one field of a derived task is caught', () => {
    const wideners: { field: string; widen: (t: Task, parent: Task) => Task | undefined }[] = [
      { field: 'user', widen: (t) => ({ ...t, user: 'mallory@example.com' }) },
      { field: 'policies', widen: (t, p) => (p.policies.length === 0 ? undefined : { ...t, policies: t.policies.filter((s) => s !== p.policies[0]) }) },
      { field: 'policyPacks', widen: (t) => ({ ...t, policyPacks: [] }) },
      { field: 'limits', widen: (t, p) => ({ ...t, limits: { ...t.limits, toolTimeout: `${durationToMs(p.limits.toolTimeout) + 1}ms` } }) },
      { field: 'limits', widen: (t, p) => ({ ...t, limits: { ...t.limits, maxSteps: p.limits.maxSteps + 1 } }) },
      { field: 'limits', widen: (t, p) => (p.limits.onDeny === 'stop' ? { ...t, limits: { ...t.limits, onDeny: 'continue' } } : undefined) },
      { field: 'tools', widen: (t) => ({ ...t, tools: { ...t.tools, custom: [...t.tools.custom, { name: 'gamma', description: 'd', source: 'return 3', input: { type: 'object' }, capabilities: ['http.fetch'] }] } }) },
      { field: 'resources', widen: (t) => ({ ...t, resources: { ...t.resources, workspace: '/' } }) },
      { field: 'grants', widen: (t) => ({ ...t, grants: { ...t.grants, hosts: [...t.grants.hosts, 'evil.example'] } }) },
      { field: 'snapshot', widen: (t) => ({ ...t, snapshot: true }) },
      { field: 'subagents', widen: (t) => ({ ...t, subagents: {} }) },
    ];
    fc.assert(
      fc.property(parentTask, fc.constantFrom(...wideners), (parent, { field, widen }) => {
        const widened = widen(deriveSubagentTask(parent, 'kid', undefined), parent);
        if (widened === undefined) return;
        expect(wideningsOfTask(widened, parent).some((w) => w.startsWith(`${field}:`))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the reproduced example', () => {
  it("keeps the parent's packs and narrows toolTimeout and approvalTimeout", () => {
    const parent = TaskSchema.parse({
      user: 'alice@example.com',
      intent: 'write notes',
      agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
      tools: { builtin: ['fs.write'] },
      grants: { tools: ['fs.write'], subagents: ['kid'] },
      policyPacks: ['advanced', '/packs/mypack'],
      limits: { toolTimeout: '5s', approvalTimeout: '1m', deadline: '10m' },
      resources: { workspace: '/ws' },
      subagents: {
        kid: {
          intent: 'write kid.txt',
          agent: { name: 'kid', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
          tools: { builtin: ['fs.write'] },
          grants: { tools: ['fs.write'] },
          limits: { toolTimeout: '1h', approvalTimeout: '2h', deadline: '1h', maxSteps: 5 },
        },
      },
    });
    const child = deriveSubagentTask(parent, 'kid', undefined);
    expect(child.policyPacks).toEqual(['advanced', '/packs/mypack']);
    expect(child.limits).toMatchObject({ toolTimeout: '5s', approvalTimeout: '1m', deadline: '10m', maxSteps: 5 });
    expect(wideningsOfTask(child, parent)).toEqual([]);
  });

  it('narrowLimits takes the narrower of each limit', () => {
    const parent = LimitsSchema.parse({ maxSteps: 10, deadline: '1m', toolTimeout: '2s', toolMemoryMb: 32, onDeny: 'continue', approvalTimeout: '30s', maxDepth: 2 });
    expect(narrowLimits(parent, { maxSteps: 99, deadline: '30s', toolTimeout: '1h', toolMemoryMb: 8, onDeny: 'stop', approvalTimeout: '1h', maxDepth: 5 })).toEqual({
      maxSteps: 10,
      deadline: '30s',
      toolTimeout: '2s',
      toolMemoryMb: 8,
      onDeny: 'stop',
      approvalTimeout: '30s',
      maxDepth: 2,
    });
  });
});
