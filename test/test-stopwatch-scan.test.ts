/**
 * A static scan (TypeScript compiler API, syntax only) of the tests themselves: a test must pass on
 * a loaded machine (CI runs two files at a time on two cores beside other work; one flaky failure
 * refuses a submission), and speed targets are checked by `npm run bench`, not by timed tests. Two
 * patterns made tests depend on how fast the machine was when speed was not their subject:
 *
 * - a stopwatch upper bound: `expect(Date.now() - started).toBeLessThan(2000)`, or the same on a
 *   variable computed from a clock (`const elapsed = performance.now() - t0`). What a test of a
 *   timeout can say under load is that it fired (its error code), not how soon;
 * - a poll with a short overall bound: `vi.waitFor`, `vi.waitUntil` and `expect.poll` give up after
 *   1 s unless told otherwise, and a loaded machine takes longer than that to do much. Each must
 *   name a `timeout` of at least {@link MIN_POLL_TIMEOUT_MS} (a bound on a hang, not a speed check).
 *
 * {@link ALLOWED} lists the stopwatch bounds that may stay, each with why it holds under load; an
 * entry that no longer occurs fails the test, so the list only shrinks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/warden-test-env';

/** The shortest overall bound a poll in a test may name (ms). */
const MIN_POLL_TIMEOUT_MS = 30_000;

/** Stopwatch upper bounds allowed: [file under test/, the `expect(...)` call's source text, why it holds under load]. */
const ALLOWED: [string, string, string][] = [
  [
    'drivers/openai-driver.test.ts',
    'expect(Date.now() - started).toBeLessThan(60_000)',
    'the fake server answers at 120 s: failing well before that shows the 200 ms request timeout gave the request up; 60 s is no speed check',
  ],
  [
    'worker/standalone-worker.test.ts',
    'expect(Date.now() - statSync(again.file).mtimeMs).toBeLessThan(30_000)',
    'the record was dated a minute back just before: under 30 s old means it was touched, however slow the machine',
  ],
  [
    'attacks/json-error-late-in-long-file.test.ts',
    'expect(ms, said).toBeLessThan(2_000)',
    'speed is the subject (quadratic against linear): the quadratic scan took about 7 s for these 20,000 lines, the linear one tens of ms, so 2 s leaves a loaded machine tens of times the room',
  ],
  [
    'sandbox/slow-host-not-presumed-wedged.test.ts',
    'expect(outcome.elapsedMs).toBeLessThanOrEqual(row.elapsed.max)',
    'a wedged host must be killed by the silence rule (about 4 s here), not left to the overrun limit (60 s): the bound is 30 s, half the limit, which no load delays a 4 s timer to',
  ],
];

const TEST_DIR = join(REPO_ROOT, 'test');

function testSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testSources(path);
    return /\.m?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Whether `node` reads a clock: `Date.now()`, `performance.now()`, `process.hrtime(...)`, `process.hrtime.bigint()`. */
function readsClock(node: ts.Node): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n)) {
      const callee = n.expression.getText();
      if (callee === 'Date.now' || callee === 'performance.now' || callee.startsWith('process.hrtime')) {
        found = true;
        return;
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

/** Names declared in `sf` whose initializer is a difference involving a clock (`Date.now() - started`). */
function clockDifferences(sf: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  const visit = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer !== undefined) {
      const init = n.initializer;
      if (ts.isBinaryExpression(init) && init.operatorToken.kind === ts.SyntaxKind.MinusToken && readsClock(init)) names.add(n.name.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return names;
}

function mentions(node: ts.Node, names: Set<string>): boolean {
  if (ts.isIdentifier(node) && names.has(node.text)) return true;
  return ts.forEachChild(node, (child) => (mentions(child, names) ? true : undefined)) ?? false;
}

interface Finding {
  file: string;
  line: number;
  text: string;
}

function parse(text: string): ts.SourceFile {
  return ts.createSourceFile('scanned.ts', text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

/** Every `expect(<a clock difference>).toBeLessThan[OrEqual](...)` in `sf`. */
function stopwatchBounds(file: string, sf: ts.SourceFile): Finding[] {
  const differences = clockDifferences(sf);
  const found: Finding[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && /^toBeLessThan(OrEqual)?$/.test(n.expression.name.text)) {
      const subject = n.expression.expression;
      if (ts.isCallExpression(subject) && subject.expression.getText() === 'expect' && subject.arguments[0] !== undefined) {
        const measured = subject.arguments[0];
        if (readsClock(measured) || mentions(measured, differences)) found.push({ file, line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1, text: n.getText().replace(/\s+/g, ' ') });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

const POLLS = new Set(['vi.waitFor', 'vi.waitUntil', 'expect.poll']);

/** Every poll in `sf` whose overall bound is not a literal of at least MIN_POLL_TIMEOUT_MS. */
function shortPolls(file: string, sf: ts.SourceFile): Finding[] {
  const found: Finding[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && POLLS.has(n.expression.getText())) {
      const options = n.arguments[1];
      let timeout: ts.Expression | undefined;
      if (options !== undefined && ts.isObjectLiteralExpression(options)) {
        const property = options.properties.find((p) => ts.isPropertyAssignment(p) && p.name.getText() === 'timeout');
        if (property !== undefined && ts.isPropertyAssignment(property)) timeout = property.initializer;
      } else timeout = options;
      const ms = timeout !== undefined && ts.isNumericLiteral(timeout) ? Number(timeout.text) : undefined;
      if (ms === undefined || ms < MIN_POLL_TIMEOUT_MS) {
        found.push({ file, line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1, text: `${n.expression.getText()}(..., ${options?.getText().replace(/\s+/g, ' ') ?? 'no options: 1 s'})` });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

const sources = testSources(TEST_DIR).map((path) => ({ file: relative(TEST_DIR, path), sf: parse(readFileSync(path, 'utf8')) }));

describe('tests do not time the machine', () => {
  it('no stopwatch upper bound outside the allow-list', () => {
    const found = sources.flatMap(({ file, sf }) => stopwatchBounds(file, sf));
    const allowed = (f: Finding) => ALLOWED.some(([file, call]) => file === f.file && call === f.text);
    expect(found.filter((f) => !allowed(f)).map((f) => `${f.file}:${f.line} ${f.text}`)).toEqual([]);
    // An entry whose bound is gone comes off the list.
    expect(ALLOWED.filter(([file, call]) => !found.some((f) => f.file === file && f.text === call)).map(([file, call]) => `${file}: ${call}`)).toEqual([]);
  });

  it(`every poll names an overall bound of at least ${MIN_POLL_TIMEOUT_MS} ms`, () => {
    expect(sources.flatMap(({ file, sf }) => shortPolls(file, sf)).map((f) => `${f.file}:${f.line} ${f.text}`)).toEqual([]);
  });

  // The scan's own cases: what it must refuse, and what it must let through.
  it.each([
    ['a bound on Date.now() - start', 'const t0 = Date.now(); await run(); expect(Date.now() - t0).toBeLessThan(2000);', 1],
    ['a bound on a variable holding a clock difference', 'const elapsed = performance.now() - t0; expect(elapsed).toBeLessThanOrEqual(500);', 1],
    ['a bound on process.hrtime', 'expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(100);', 1],
    ['a lower bound (a delay that must not come early)', 'expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);', 0],
    ['a bound on a size', 'expect(bytes.length).toBeLessThan(1024);', 0],
    ['a bound on a recorded duration (data, not the clock)', 'expect(step.durationMs).toBeLessThan(10);', 0],
  ])('stopwatch: %s', (_, text, count) => {
    expect(stopwatchBounds('case.ts', parse(text))).toHaveLength(count);
  });

  it.each([
    ['no options (vitest waits 1 s)', 'await vi.waitFor(() => expect(x).toBe(1));', 1],
    ['a short timeout', 'await vi.waitFor(() => expect(x).toBe(1), { timeout: 10_000, interval: 100 });', 1],
    ['a number as options', 'await vi.waitFor(() => expect(x).toBe(1), 5000);', 1],
    ['expect.poll without a timeout', "await expect.poll(() => page.textContent('h1')).toBe('x');", 1],
    ['a timeout that is not a literal', 'await vi.waitUntil(() => done, { timeout: LIMIT });', 1],
    ['a generous literal', 'await vi.waitFor(() => expect(x).toBe(1), { timeout: 60_000, interval: 100 });', 0],
  ])('poll: %s', (_, text, count) => {
    expect(shortPolls('case.ts', parse(text))).toHaveLength(count);
  });
});
