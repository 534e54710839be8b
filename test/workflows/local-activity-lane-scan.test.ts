/**
 * Every local activity a workflow schedules goes through the run's lane (workflows/local-lane.ts).
 *
 * Two local activities of one run in flight together reach the workflow in the order they
 * complete live, and may replay in another (test/attacks/open/kill-beside-local-activity-replay.test.ts):
 * a handler's (the kill Update, the block signal) beside the loop's or the data flow's left
 * histories that did not replay. The lane runs them one at a time. This scans every workflow
 * module (TypeScript's own parser): each stub `proxyLocalActivities` makes (a destructured
 * activity, a variable holding the proxy, an object property returning one) and every use of it,
 * in its module and in the modules importing it, must sit inside a `<...>lane.run(() => ...)`
 * call. A new local activity outside the lane fails here, not on a worker restart in production.
 * (Which runs the lane orders is the patches' business: `warden-local-lane`,
 * `warden-flow-local-lane`; a run from before them holds a disabled lane, `new LocalLane(false)`.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const WORKFLOWS = join(REPO_ROOT, 'workflows');

interface Module {
  file: string;
  source: ts.SourceFile;
}

/** A local-activity stub: `name` as it is used (`authorizeKill`, `summarized.checkPolicy`, `local`). */
interface Stub {
  file: string;
  name: string;
  declaration: ts.Node;
}

interface Scan {
  stubs: string[];
  /** Uses of a stub inside a lane, `file: name`. */
  laned: string[];
  /** Uses outside any lane, with their line: what must be empty. */
  outside: string[];
}

const isProxyCall = (node: ts.Node): node is ts.CallExpression => ts.isCallExpression(node) && /(^|\.)proxyLocalActivities$/.test(node.expression.getText());

/** The stubs a `proxyLocalActivities(...)` call makes: what it is bound to. */
function stubsOf(module: Module, call: ts.CallExpression): Stub[] | undefined {
  for (let node: ts.Node = call.parent; !ts.isSourceFile(node); node = node.parent) {
    if (ts.isVariableDeclaration(node)) {
      if (ts.isIdentifier(node.name)) return [{ file: module.file, name: node.name.text, declaration: node.name }];
      if (ts.isObjectBindingPattern(node.name)) return node.name.elements.map((e) => ({ file: module.file, name: (e.name as ts.Identifier).text, declaration: e.name }));
    }
    if (ts.isPropertyAssignment(node)) {
      // `const summarized = { checkPolicy: (s) => proxyLocalActivities(...).checkPolicy }`: used as `summarized.checkPolicy`.
      const owner = node.parent.parent;
      if (ts.isVariableDeclaration(owner) && ts.isIdentifier(owner.name)) return [{ file: module.file, name: `${owner.name.text}.${node.name.getText()}`, declaration: node.name }];
    }
    if (ts.isBlock(node) || ts.isClassDeclaration(node)) break;
  }
  return undefined;
}

/** True when `node` sits in an argument of a `...lane.run(...)` call. */
function inLane(node: ts.Node): boolean {
  for (let child = node, parent = node.parent; parent !== undefined; child = parent, parent = parent.parent) {
    if (ts.isCallExpression(parent) && parent.arguments.includes(child as ts.Expression) && ts.isPropertyAccessExpression(parent.expression)) {
      if (parent.expression.name.text === 'run' && /lane$/i.test(parent.expression.expression.getText())) return true;
    }
  }
  return false;
}

/** How `module` imports from `from` (a workflow module's file name): the names, and a namespace's. */
function importsFrom(module: Module, from: string): { names: Set<string>; namespaces: string[] } {
  const names = new Set<string>();
  const namespaces: string[] = [];
  for (const statement of module.source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    if (`${basename(statement.moduleSpecifier.text)}.ts` !== from) continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings !== undefined && ts.isNamedImports(bindings)) for (const e of bindings.elements) names.add(e.name.text);
    if (bindings !== undefined && ts.isNamespaceImport(bindings)) namespaces.push(bindings.name.text);
  }
  return { names, namespaces };
}

function lineOf(module: Module, node: ts.Node): number {
  return module.source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
}

/** Scans `modules` (file name → source text) for local-activity stubs and their uses. */
function scanLocalActivities(modules: Record<string, string>): Scan {
  const parsed: Module[] = Object.entries(modules).map(([file, text]) => ({ file, source: ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true) }));
  const scan: Scan = { stubs: [], laned: [], outside: [] };
  const stubs: Stub[] = [];
  for (const module of parsed) {
    const visit = (node: ts.Node): void => {
      if (isProxyCall(node)) {
        const made = stubsOf(module, node);
        // Not bound to a name (called in place): the call itself must be in a lane.
        if (made === undefined) (inLane(node) ? scan.laned : scan.outside).push(`${module.file}:${lineOf(module, node)}: ${node.getText().slice(0, 80)}`);
        else stubs.push(...made);
      }
      ts.forEachChild(node, visit);
    };
    visit(module.source);
  }
  for (const stub of stubs) {
    scan.stubs.push(`${stub.file}: ${stub.name}`);
    const [head] = stub.name.split('.');
    for (const module of parsed) {
      const imported = importsFrom(module, stub.file);
      if (module.file !== stub.file && !imported.names.has(head!) && imported.namespaces.length === 0) continue;
      // Through a namespace import (`import * as stubs`): `stubs.checkPolicy`, `stubs.summarized.checkPolicy`.
      const spelled = [...(module.file === stub.file || imported.names.has(head!) ? [stub.name] : []), ...imported.namespaces.map((ns) => `${ns}.${stub.name}`)];
      const visit = (node: ts.Node): void => {
        const use =
          (ts.isPropertyAccessExpression(node) && spelled.includes(node.getText().replace(/\s+/g, ''))) ||
          (!stub.name.includes('.') && ts.isIdentifier(node) && node.text === stub.name && node !== stub.declaration && !(ts.isPropertyAccessExpression(node.parent) && node.parent.name === node) && !(ts.isPropertyAssignment(node.parent) && node.parent.name === node));
        const typeOnly = (n: ts.Node) => { for (let p: ts.Node | undefined = n; p !== undefined; p = p.parent) if (ts.isTypeQueryNode(p) || ts.isImportDeclaration(p) || ts.isExportSpecifier(p)) return true; return false; };
        if (use && !typeOnly(node) && !(ts.isBindingElement(node.parent) && node.parent.name === node)) {
          (inLane(node) ? scan.laned : scan.outside).push(`${module.file}:${lineOf(module, node)}: ${stub.name}`);
          return;
        }
        ts.forEachChild(node, visit);
      };
      visit(module.source);
    }
  }
  return scan;
}

function workflowModules(): Record<string, string> {
  return Object.fromEntries(readdirSync(WORKFLOWS).filter((f) => f.endsWith('.ts')).map((f) => [f, readFileSync(join(WORKFLOWS, f), 'utf8')]));
}

describe('local activities', () => {
  it('every one a workflow schedules goes through the run\'s lane', () => {
    const scan = scanLocalActivities(workflowModules());
    expect(scan.outside).toEqual([]);
    // The scan sees the local activities there are (it cannot pass by finding none).
    expect(scan.stubs).toEqual(
      expect.arrayContaining([
        'activity-stubs.ts: summarized.checkPolicy',
        'monitor-step.ts: authorizeKill',
        'monitor-step.ts: checkRevoked',
        'monitor-step.ts: beginMonitoring',
        'monitor-step.ts: respondToAnomaly',
        'monitor-step.ts: recordAlertDelivery',
        'task-flow.ts: local',
      ]),
    );
    for (const used of ['guard-action.ts', 'monitor-step.ts', 'task-flow.ts']) expect(scan.laned.some((u) => u.startsWith(`${used}:`)), used).toBe(true);
  });

  // The scanner on small modules: each case is a way a local activity can slip past the lane.
  const cases: { name: string; modules: Record<string, string>; outside: number }[] = [
    {
      name: 'the data flow\'s call before warden-flow-local-lane (callHere)',
      modules: { 'f.ts': 'const local = proxyLocalActivities({}); async function f(op) { return await op(local, "w"); }' },
      outside: 1,
    },
    { name: 'a proxy held in a variable, its activity called', modules: { 'f.ts': 'const local = proxyLocalActivities({}); async function f(lane) { await local.finishTask({}); await lane.run(() => local.endTask({})); }' }, outside: 1 },
    { name: 'a destructured stub called bare', modules: { 'm.ts': 'const { authorizeKill } = proxyLocalActivities({}); async function k() { await authorizeKill({}); }' }, outside: 1 },
    { name: 'a stub called in place', modules: { 'm.ts': 'async function k() { await proxyLocalActivities({}).checkPolicy({}); }' }, outside: 1 },
    {
      name: 'an exported stub used by an importing module',
      modules: { 's.ts': 'export const { checkPolicy } = proxyLocalActivities({});', 'g.ts': "import { checkPolicy } from './s'; async function g() { await checkPolicy({}); }" },
      outside: 1,
    },
    {
      name: 'a summarised stub used outside and inside the lane',
      modules: {
        's.ts': 'export const summarized = { checkPolicy: (s) => proxyLocalActivities({ summary: s }).checkPolicy };',
        'g.ts': "import { summarized } from './s'; async function g(run) { await summarized.checkPolicy('x')({}); await run.monitor.lane.run(() => summarized.checkPolicy('y')({})); }",
      },
      outside: 1,
    },
    {
      name: 'a stub used through a namespace import',
      modules: { 's.ts': 'export const { checkPolicy } = proxyLocalActivities({});', 'g.ts': "import * as stubs from './s'; async function g(lane) { await stubs.checkPolicy({}); await lane.run(() => stubs.checkPolicy({})); }" },
      outside: 1,
    },
    {
      name: 'in the lane, and in types only: nothing outside',
      modules: { 'm.ts': 'const { authorizeKill } = proxyLocalActivities({}); let who: ReturnType<typeof authorizeKill>; async function k(lane) { who = await this.lane.run(() => authorizeKill({})); await lane.run(() => authorizeKill({})); }' },
      outside: 0,
    },
  ];
  for (const c of cases) {
    it(`the scan finds ${c.name}`, () => {
      expect(scanLocalActivities(c.modules).outside).toHaveLength(c.outside);
    });
  }
});
