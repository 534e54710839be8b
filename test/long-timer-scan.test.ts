/**
 * A static scan (TypeScript compiler API, syntax only) of every timer runtime code arms: each
 * `setTimeout`, `setInterval` and `AbortSignal.timeout` outside test/ and bench/ must have a delay
 * the scan can bound at most 2^31 - 1 ms (a literal, a constant, arithmetic of those, `Math.min`
 * with one such argument), or go through long-timer.ts (`setLongTimeout`, `longDelay`,
 * `longTimeoutSignal`), which waits in steps. A bare Node timer given more fires after 1 ms
 * (regression: test/long-timer-overflow.test.ts, a task's `deadline: 600h` stopping every call).
 * Imports of Node's `timers` modules are refused: they would hide the calls from the scan.
 *
 * {@link ALLOWED} lists the calls the scan cannot bound that may stay, each with why; an entry that
 * no longer occurs fails the test, so the list only shrinks.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../long-timer';
import { REPO_ROOT } from './support/warden-test-env';

/** Timer calls allowed although their delay is not bounded here: [file, the call's source text, why]. */
const ALLOWED: [string, string, string][] = [
  ['long-timer.ts', 'setTimeout(then, ms)', 'the long timer itself: `ms` is at most MAX_TIMER_MS (a step, or a delay within the cap)'],
  ['long-timer.ts', 'AbortSignal.timeout(delayMs)', 'longTimeoutSignal: only reached when delayMs <= MAX_TIMER_MS'],
];

/** Folders that are not runtime code: tests, benchmarks, build output, dependencies, state. */
const SKIPPED = new Set(['node_modules', 'build', 'test', 'bench']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name.startsWith('.') || (dir === REPO_ROOT && SKIPPED.has(entry.name))) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(m?ts|m?js|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const parsed = new Map<string, ts.SourceFile>();
function parse(path: string, text = readFileSync(path, 'utf8')): ts.SourceFile {
  let sf = parsed.get(path);
  if (sf === undefined) {
    sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, /\.m?js$|\.cjs$/.test(path) ? ts.ScriptKind.JS : ts.ScriptKind.TS);
    parsed.set(path, sf);
  }
  return sf;
}

/** The initializer of `name` declared `const` at the top level of `sf`, or imported into it from a relative module. */
function constantOf(name: string, sf: ts.SourceFile): { init: ts.Expression; sf: ts.SourceFile } | undefined {
  for (const statement of sf.statements) {
    if (ts.isVariableStatement(statement) && (statement.declarationList.flags & ts.NodeFlags.Const) !== 0) {
      for (const d of statement.declarationList.declarations) if (ts.isIdentifier(d.name) && d.name.text === name && d.initializer !== undefined) return { init: d.initializer, sf };
    }
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier) && statement.moduleSpecifier.text.startsWith('.')) {
      const named = statement.importClause?.namedBindings;
      if (named === undefined || !ts.isNamedImports(named)) continue;
      const spec = named.elements.find((e) => e.name.text === name);
      if (spec === undefined) continue;
      const base = resolve(dirname(sf.fileName), statement.moduleSpecifier.text).replace(/\.js$/, '');
      const file = ['.ts', '.mts', '.js'].map((ext) => base + ext).find((f) => existsSync(f));
      return file === undefined ? undefined : constantOf((spec.propertyName ?? spec.name).text, parse(file));
    }
  }
  return undefined;
}

/** The most `e` can be, in ms, when the scan can tell (operands taken as non-negative), else undefined. */
export function boundOf(e: ts.Expression, sf: ts.SourceFile, seen = new Set<string>()): number | undefined {
  if (ts.isNumericLiteral(e)) return Number(e.text.replace(/_/g, ''));
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) return boundOf(e.expression, sf, seen);
  if (ts.isIdentifier(e)) {
    if (seen.has(e.text)) return undefined;
    const found = constantOf(e.text, sf);
    return found === undefined ? undefined : boundOf(found.init, found.sf, new Set([...seen, e.text]));
  }
  if (ts.isConditionalExpression(e)) return maxOf([boundOf(e.whenTrue, sf, seen), boundOf(e.whenFalse, sf, seen)]);
  if (ts.isBinaryExpression(e)) {
    const left = boundOf(e.left, sf, seen);
    const right = boundOf(e.right, sf, seen);
    switch (e.operatorToken.kind) {
      case ts.SyntaxKind.PlusToken:
        return left === undefined || right === undefined ? undefined : left + right;
      case ts.SyntaxKind.AsteriskToken:
        return left === undefined || right === undefined ? undefined : left * right;
      case ts.SyntaxKind.AsteriskAsteriskToken:
        return left === undefined || right === undefined ? undefined : left ** right;
      case ts.SyntaxKind.MinusToken:
        return left === undefined ? undefined : ts.isNumericLiteral(e.right) ? left - Number(e.right.text) : left;
      case ts.SyntaxKind.SlashToken:
        return left === undefined || !ts.isNumericLiteral(e.right) ? undefined : left / Number(e.right.text);
      case ts.SyntaxKind.QuestionQuestionToken:
        return maxOf([left, right]);
      default:
        return undefined;
    }
  }
  if (ts.isCallExpression(e)) {
    const callee = e.expression.getText(sf);
    const args = e.arguments.map((a) => boundOf(a, sf, seen));
    if (callee === 'Math.min') return args.some((a) => a !== undefined) ? Math.min(...args.filter((a): a is number => a !== undefined)) : undefined;
    if (callee === 'Math.max') return maxOf(args);
    if (['Math.floor', 'Math.round', 'Math.trunc'].includes(callee)) return args[0];
    if (callee === 'Math.ceil') return args[0] === undefined ? undefined : Math.ceil(args[0]);
    if (callee === 'Math.random') return 1;
    return undefined;
  }
  if (ts.isElementAccessExpression(e) && ts.isIdentifier(e.expression)) {
    const found = constantOf(e.expression.text, sf);
    const array = found?.init !== undefined ? unwrap(found.init) : undefined;
    return array !== undefined && ts.isArrayLiteralExpression(array) ? maxOf(array.elements.map((x) => boundOf(x as ts.Expression, found!.sf, seen))) : undefined;
  }
  return undefined;
}

function unwrap(e: ts.Expression): ts.Expression {
  return ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e) ? unwrap(e.expression) : e;
}

function maxOf(values: (number | undefined)[]): number | undefined {
  return values.length > 0 && values.every((v) => v !== undefined) ? Math.max(...(values as number[])) : undefined;
}

const TIMERS: Record<string, number> = { setTimeout: 1, setInterval: 1, 'globalThis.setTimeout': 1, 'globalThis.setInterval': 1, 'window.setTimeout': 1, 'window.setInterval': 1, 'AbortSignal.timeout': 0 };

/** Timer calls in `sf` whose delay is not bounded under the cap, as their source text; and imports of Node's timers modules. */
export function unboundedTimers(sf: ts.SourceFile): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const at = TIMERS[node.expression.getText(sf)];
      if (at !== undefined) {
        const delay = node.arguments[at];
        const bound = delay === undefined ? 0 : boundOf(delay, sf);
        if (bound === undefined || bound > MAX_TIMER_MS) found.push(node.getText(sf));
      }
    }
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && /^(node:)?timers(\/promises)?$/.test(node.moduleSpecifier.text)) found.push(node.getText(sf));
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('the scan', () => {
  it.each<[string, boolean]>([
    ['setTimeout(f, 1000);', true],
    ['setTimeout(f);', true],
    ['const T = 30_000; setInterval(f, T);', true],
    ['const T = 2 ** 31 - 1; setTimeout(f, T);', true],
    ['const T = 2 ** 31; setTimeout(f, T);', false],
    ['setTimeout(f, 2147483648);', false],
    ['setTimeout(f, left);', false],
    ['setTimeout(f, deadlineAt - Date.now());', false],
    ['setTimeout(f, options.pollMs ?? 500);', false],
    ['const D = [100, 500]; setTimeout(f, D[i]);', true],
    ['setTimeout(f, 10 + Math.floor(Math.random() * 40));', true],
    ['setTimeout(f, Math.min(200, 10 + attempt * 10));', true],
    ['setInterval(f, Math.max(100, Math.floor(timeoutMs / 3)));', false],
    ['AbortSignal.timeout(ms);', false],
    ['AbortSignal.timeout(5000);', true],
    ['globalThis.setTimeout(f, ms);', false],
    ["import { setTimeout as sleep } from 'node:timers/promises';", false],
    ['socket.setTimeout(ms);', true],
  ])('%s is bounded: %s', (code, bounded) => {
    const sf = ts.createSourceFile('x.ts', code, ts.ScriptTarget.Latest, true);
    expect(unboundedTimers(sf).length === 0).toBe(bounded);
  });
});

it('every timer in runtime code has a delay under 2^31 - 1 ms, or goes through long-timer.ts', () => {
  const found: [string, string][] = [];
  for (const path of sourceFiles(REPO_ROOT)) for (const call of unboundedTimers(parse(path))) found.push([relative(REPO_ROOT, path), call]);
  const allowed = new Set(ALLOWED.map(([file, call]) => `${file}: ${call}`));
  expect(found.map(([file, call]) => `${file}: ${call}`).filter((f) => !allowed.has(f))).toEqual([]);
  // Each allowed entry still occurs: the list only shrinks.
  const occurring = new Set(found.map(([file, call]) => `${file}: ${call}`));
  expect([...allowed].filter((a) => !occurring.has(a))).toEqual([]);
});
