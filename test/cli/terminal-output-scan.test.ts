/**
 * A static scan (TypeScript compiler API, syntax only) of what the CLI writes: every
 * `io.stdout(...)`, `io.stderr(...)` and `process.stdout/stderr.write(...)` in cli/**\/*.ts whose
 * text interpolates a value must take that value through `terminalLine` / `terminalLines`
 * (terminal-text.ts) or, for JSON, `terminalJson` (never a bare `JSON.stringify`, which writes C1,
 * U+2028/9 and bidi controls raw), unless the value is Warden's own: a literal, a count,
 * a module constant, or an expression of {@link WARDEN_MADE} (each with the reason it is Warden's).
 * Line-break forgery needs this per-field escape; escape sequences are closed for every view on a
 * terminal anyway (terminalWriter, test/cli/tty-output.test.ts).
 *
 * {@link TODO} lists what the scan found and nobody has judged yet: each must go (escaped, or moved
 * to WARDEN_MADE with its reason), and an entry that no longer occurs fails the test, so the list
 * only shrinks.
 *
 * Second check: every `JSON.stringify` left in cli/ is listed in {@link JSON_STRINGIFY_ALLOWED} with
 * why its text is no output of its own (a file Warden writes, text a view escapes with terminalLine);
 * JSON the CLI prints goes through terminalJson (regression: test/cli/piped-json-escapes-controls.test.ts).
 *
 * Third check: no runtime module writes to process.stdout / process.stderr (or console) but
 * through terminalWriter, so the terminal escape covers every stream Warden writes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

/** Calls whose result holds no control and no line break of others': the escapes, and JSON through terminalJson. */
const ESCAPES = new Set(['terminalLine', 'terminalLines', 'terminalJson']);

/**
 * `JSON.stringify` calls allowed in cli/: [file, the call's source text or `*` for every call of a file that prints nothing, why its text is not printed as is].
 * Everything else the CLI serialises as JSON for output goes through terminalJson.
 */
const JSON_STRINGIFY_ALLOWED: [string, string, string][] = [
  ['cli/format-summary.ts', 'JSON.stringify(value)', "compact(): a step's arguments inside formatStep's line, which goes through terminalLine whole"],
  ['cli/commands/credentials.ts', "JSON.stringify(p['aud'] ?? null)", 'a line of the human view, every line of which goes through terminalLine'],
  ['cli/commands/credentials.ts', "JSON.stringify(p['grants'])", 'a line of the human view, every line of which goes through terminalLine'],
  ['cli/commands/policy.ts', 'JSON.stringify(rule.spec, null, 2)', "describe(): the human view's text, which goes through terminalLines"],
  ['cli/commands/mcp.ts', "JSON.stringify({ name: 'warden-mcp-packages', private: true }, null, 2)", "the package.json of Warden's MCP package folder: Warden's constant, written to a file npm reads"],
  ['cli/commands/approvers.ts', 'JSON.stringify(keyFile, null, 2)', "an approver's key file (0600) written where the operator asked, read back by Warden"],
  ['cli/module-code-cache.ts', '*', "the module code cache's keys, file header and environment variable, and the code it installs: never printed"],
];

/** Every `JSON.stringify(...)` call in cli/, as [file, its source text]. */
function jsonStringifyCalls(): [string, string][] {
  const found: [string, string][] = [];
  for (const path of sourceFiles(join(REPO_ROOT, 'cli'))) {
    const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && node.expression.getText(sf) === 'JSON.stringify') found.push([relative(REPO_ROOT, path), node.getText(sf)]);
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

/**
 * Values Warden made, or texts a Warden function already escaped: [files (path under the repository),
 * expression (its source text), why]. An expression matching in a file matching is judged.
 */
const WARDEN_MADE: [RegExp, RegExp, string][] = [
  [/^cli\//, /^[A-Z][A-Z0-9_]*$/, "a module constant (a usage text, a limit): Warden's source"],
  [/^cli\//, /^(error|failure)\.code$/, "a WardenError's code: one of Warden's stable codes (errors.ts), checked by instanceof before"],
  [/^cli\//, /\.length$/, 'a count'],
  [/^cli\/main\.ts$/, /^overview\(\)$|^packageVersion\(\)$|^\(await entry\.load\(\)\)\.usage$/, "Warden's help, version and a command's usage"],
  [/^cli\/parse-command-args\.ts$/, /^usage$/, "the calling command's usage text (its module constant)"],
  [
    /^cli\//,
    /^(formatPendingApproval|formatRecovery|formatStep|formatSummary|formatTaskView|alertTextLine|formatList|formatTaskTimeline|formatRecords)\(/,
    'a view that escapes each line itself (cli/format-summary.ts, status.ts, list.ts, snapshots.ts, custody/task-timeline.ts, activities/monitor-activities.ts; test/terminal-text.test.ts)',
  ],
  [/^cli\/commands\/(attest|audit|replay|receipt|db|baseline)\.ts$/, /^(describe|describeStatus|describeUnpinned|summary)\(/, "the command's own view, which escapes each line or each field of others'"],
  [/^cli\/commands\/alerts\.ts$/, /^formatAlertLine\(/, 'escapes each line (test/terminal-text.test.ts)'],
  [/^cli\/commands\/approvals\.ts$/, /^name$/, "'approve' or 'deny', the command's name"],
  [/^cli\/commands\/console\.ts$/, /^consoleServer\.(url|token|loginUrl)$|^port$/, 'made by the console server this process started (a loopback URL, a random token, a port number)'],
  [/^cli\/commands\/(mcp|server)\.ts$/, /^(code|pid|port|status\.record\?\.pid)$/, 'a number: an exit code, a process id, a port'],
  [
    /^cli\/commands\/server\.ts$/,
    /^(stateDir|status\.(address|uiUrl|logFile))$/,
    "where the operator's own configuration put the embedded server (WARDEN_STATE_DIR, WARDEN_TEMPORAL_PORT) and the log file under it",
  ],
  [/^cli\/commands\/receipt\.ts$/, /^text$/, 'the receipt as JSON.stringify wrote it (the line above)'],
];

/**
 * Found by the scan, not yet judged: `<file>: <expression>`. Each is a value the scan cannot tell is
 * Warden's; most are the operator's own arguments (a file name, a workflow id) or Warden's own
 * formatting functions, some may be others' text. Judge one, then escape it or move it to WARDEN_MADE.
 */
const TODO: string[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The parts of `e` (a written text) that are neither literal, escaped, nor Warden's by WARDEN_MADE. */
function unjudged(e: ts.Expression, sf: ts.SourceFile, file: string): ts.Expression[] {
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) || ts.isNumericLiteral(e)) return [];
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e)) return unjudged(e.expression, sf, file);
  if (ts.isTemplateExpression(e)) return e.templateSpans.flatMap((span) => unjudged(span.expression, sf, file));
  if (ts.isBinaryExpression(e) && [ts.SyntaxKind.PlusToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(e.operatorToken.kind)) {
    return [...unjudged(e.left, sf, file), ...unjudged(e.right, sf, file)];
  }
  if (ts.isConditionalExpression(e)) return [...unjudged(e.whenTrue, sf, file), ...unjudged(e.whenFalse, sf, file)];
  if (ts.isCallExpression(e)) {
    const callee = e.expression.getText(sf);
    if (ESCAPES.has(callee)) return [];
    // Lines each escaped, then joined: `lines.map(terminalLine).join('\\n')`.
    if (ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'join') {
      const mapped = e.expression.expression;
      if (ts.isCallExpression(mapped) && ts.isPropertyAccessExpression(mapped.expression) && mapped.expression.name.text === 'map' && mapped.arguments[0] !== undefined) {
        // Each element through a function: judged as that function's result (`rows.map(formatRow)`, `rows.map((r) => ...)`).
        const each = mapped.arguments[0];
        if (ESCAPES.has(each.getText(sf))) return [];
        if (ts.isIdentifier(each) && WARDEN_MADE.some(([files, pattern]) => files.test(file) && pattern.test(`${each.text}(element)`))) return [];
        if (ts.isArrowFunction(each) && !ts.isBlock(each.body) && unjudged(each.body, sf, file).length === 0) return [];
      }
    }
    // Text of a value that is already judged: padding, case, ISO time, fixed-point numbers.
    if (ts.isPropertyAccessExpression(e.expression) && ['padEnd', 'padStart', 'toUpperCase', 'toLowerCase', 'toISOString', 'toFixed'].includes(e.expression.name.text)) {
      return unjudged(e.expression.expression, sf, file);
    }
  }
  if (ts.isNewExpression(e) && e.expression.getText(sf) === 'Date') return [];
  const text = e.getText(sf);
  return WARDEN_MADE.some(([files, pattern]) => files.test(file) && pattern.test(text)) ? [] : [e];
}

/** A control Warden would write itself: any terminalLine escapes but line feed and tab. */
const OWN_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;

/** Literal text (strings, template parts) in what the CLI writes that holds a control of Warden's own: `<file>:<line>`. */
const ownControls: string[] = [];

/** Every unjudged part of a text written by the CLI, as `<file>:<line>: <expression>`. */
function scanCli(): { file: string; line: number; expression: string }[] {
  const found: { file: string; line: number; expression: string }[] = [];
  for (const path of sourceFiles(join(REPO_ROOT, 'cli'))) {
    const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const file = relative(REPO_ROOT, path);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && node.arguments[0] !== undefined && /(^|\.)io\.std(out|err)$|^process\.std(out|err)\.write$/.test(node.expression.getText(sf))) {
        const literals = (n: ts.Node): void => {
          if ((ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) && OWN_CONTROL.test(n.text)) {
            ownControls.push(`${file}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`);
          }
          ts.forEachChild(n, literals);
        };
        literals(node.arguments[0]);
        for (const part of unjudged(node.arguments[0], sf, file)) {
          found.push({ file, line: sf.getLineAndCharacterOfPosition(part.getStart(sf)).line + 1, expression: part.getText(sf).replace(/\s+/g, ' ') });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

/** Folders of the repository that are not Warden's runtime: tests, benchmarks, build scripts, the browser console's assets, outputs. */
const NOT_RUNTIME = new Set(['test', 'bench', 'scripts', 'node_modules', 'build', 'examples', 'deploy', '.warden', '.warden-test', '.git']);

/** Runtime sources (.ts under the repository, and bin/warden.js) that write to process.stdout / stderr or the console but through terminalWriter. */
function directWrites(): string[] {
  const found: string[] = [];
  const files = [
    ...readdirSync(REPO_ROOT, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? (NOT_RUNTIME.has(entry.name) ? [] : sourceFiles(join(REPO_ROOT, entry.name))) : entry.name.endsWith('.ts') ? [join(REPO_ROOT, entry.name)] : [],
    ),
    join(REPO_ROOT, 'bin', 'warden.js'),
  ];
  for (const path of files) {
    const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && /^process\.std(out|err)\.write$|^console\.(log|error|warn|info|debug)$/.test(node.expression.getText(sf))) {
        found.push(`${relative(REPO_ROOT, path)}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: ${node.getText(sf).slice(0, 300)}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

/**
 * Direct writes allowed, with why: bin/warden.js writes before the CLI is loaded (fixed texts, and
 * its start-up timing: phase names and Node's resource names) and flushes with an empty write.
 */
const DIRECT_WRITES_ALLOWED: [RegExp, string][] = [
  [/^bin\/warden\.js:\d+: process\.stderr\.write\(`warden timing: /, 'phase timing of bin/warden.js itself (WARDEN_TIMING=1): its own phase names'],
  [/^bin\/warden\.js:\d+: process\.stderr\.write\('warden: [^'$]*\\n'\)$/, 'a fixed text before the CLI is loaded'],
  [/^bin\/warden\.js:\d+: process\.std(out|err)\.write\('', /, 'an empty write, to flush before exiting'],
];

describe('every stream Warden writes goes through terminalWriter', () => {
  it('no runtime module writes to process.stdout / process.stderr / the console directly', () => {
    const unexpected = directWrites().filter((write) => !DIRECT_WRITES_ALLOWED.some(([pattern]) => pattern.test(write)));
    expect(unexpected).toEqual([]);
  });
});

describe('JSON the CLI prints goes through terminalJson', () => {
  it('no JSON.stringify in cli/ but the listed ones (each with why its text is not printed as is)', () => {
    const allowed = (file: string, call: string) => JSON_STRINGIFY_ALLOWED.some(([f, c]) => f === file && (c === '*' || c === call.replace(/\s+/g, ' ')));
    expect(jsonStringifyCalls().filter(([file, call]) => !allowed(file, call)).map(([file, call]) => `${file}: ${call}`)).toEqual([]);
  });

  it('lists only calls that still occur', () => {
    const calls = jsonStringifyCalls().map(([file, call]) => `${file}: ${call.replace(/\s+/g, ' ')}`);
    const occurs = ([file, call]: [string, string, string]) => (call === '*' ? calls.some((c) => c.startsWith(`${file}: `)) : calls.includes(`${file}: ${call}`));
    expect(JSON_STRINGIFY_ALLOWED.filter((entry) => !occurs(entry)).map(([file, call]) => `${file}: ${call}`)).toEqual([]);
  });

  it('sees the calls: a --json view printed with JSON.stringify is unjudged', () => {
    const sf = ts.createSourceFile('probe.ts', 'io.stdout(`${JSON.stringify(view, null, 2)}\\n${terminalJson(view, 2)}`);', ts.ScriptTarget.Latest, true);
    const call = (sf.statements[0] as ts.ExpressionStatement).expression as ts.CallExpression;
    expect(unjudged(call.arguments[0]!, sf, 'cli/commands/probe.ts').map((e) => e.getText(sf))).toEqual(['JSON.stringify(view, null, 2)']);
  });
});

describe('what the CLI writes: others\' text through terminalLine / terminalLines / terminalJson', () => {
  const found = scanCli();
  const key = (f: { file: string; expression: string }) => `${f.file}: ${f.expression}`;

  it('finds nothing unjudged but the TODO list', () => {
    const unexpected = found.filter((f) => !TODO.includes(key(f))).map((f) => `${f.file}:${f.line}: ${f.expression}`);
    expect(unexpected).toEqual([]);
  });

  it('writes no control of Warden\'s own but line feed and tab (so on a terminal, terminalWriter changes none of Warden\'s text)', () => {
    expect(ownControls).toEqual([]);
  });

  it('lists in TODO only what still occurs (escape one, drop its entry)', () => {
    const occurring = new Set(found.map(key));
    expect(TODO.filter((entry) => !occurring.has(entry))).toEqual([]);
  });

  it('sees the writes: a view that writes others\' text raw is found', () => {
    const sf = ts.createSourceFile('probe.ts', 'io.stdout(`task ${view.workflowId}: ${view.reason} ${terminalLine(view.note)} ${COUNT} ${rows.length}\\n`);', ts.ScriptTarget.Latest, true);
    const call = (sf.statements[0] as ts.ExpressionStatement).expression as ts.CallExpression;
    expect(unjudged(call.arguments[0]!, sf, 'cli/commands/probe.ts').map((e) => e.getText(sf))).toEqual(['view.workflowId', 'view.reason']);
  });
});
