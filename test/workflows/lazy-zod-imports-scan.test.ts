/**
 * Inside the workflow bundle `zod` resolves to a stand-in that forwards zod's `z` only
 * (workflows/lazy-zod.ts, `LAZY_ZOD_ALIAS` in worker/workflow-bundle.ts: zod is evaluated in a run
 * only when the run reads it). A module written in the other styles zod documents,
 * `import * as z from 'zod'` or `import { ZodError } from 'zod'`, would typecheck, pass every test
 * run from the sources (vitest loads real zod) and bundle without a word, and only inside a
 * workflow run read undefined, failing its workflow task over and over (s16, atk16b, low, latent:
 * was the open finding `lazy-zod-drops-zod-exports`).
 *
 * Which Warden modules end up in the workflow bundle follows their imports, so this scans all of
 * them (TypeScript's own parser, tests and build output left out): every import of `zod` or a
 * `zod/...` path takes `{ z }` alone or is type-only, and nothing `require`s zod by hand except
 * the stand-in itself. A row of sources checks the scan finds each other style.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const SKIPPED = new Set(['node_modules', 'build', 'test', 'bench', '.warden', '.warden-test', '.warden-bench', '.git', 'examples', 'deploy']);
const STAND_IN = 'workflows/lazy-zod.ts';

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIPPED.has(name) || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const isZod = (specifier: string) => specifier === 'zod' || specifier.startsWith('zod/');

/** Each import of zod in `text` that the stand-in would not serve, as `line: text`. */
export function unservedZodImports(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const at = (node: ts.Node) => `${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText().split('\n')[0]}`;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && isZod(node.moduleSpecifier.text)) {
      const clause = node.importClause;
      const served =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly || (e.propertyName ?? e.name).text === 'z')));
      if (!served) found.push(at(node));
    }
    if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier) && isZod(node.moduleSpecifier.text) && !node.isTypeOnly) found.push(at(node));
    if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteralLike(node.arguments[0]!) && isZod(node.arguments[0].text)) {
      const callee = node.expression;
      if ((ts.isIdentifier(callee) && callee.text === 'require') || callee.kind === ts.SyntaxKind.ImportKeyword) found.push(at(node));
    }
    if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression) && isZod(node.moduleReference.expression.text)) found.push(at(node));
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('zod imports the workflow bundle stand-in serves', () => {
  it('every Warden module takes `{ z }` or types alone', () => {
    const files = sourceFiles(REPO_ROOT);
    expect(files.length).toBeGreaterThan(100);
    const unserved = files
      .filter((file) => relative(REPO_ROOT, file) !== STAND_IN)
      .flatMap((file) => unservedZodImports(file, readFileSync(file, 'utf8')).map((line) => `${relative(REPO_ROOT, file)}:${line}`));
    expect(unserved).toEqual([]);
  });

  it.each([
    ["import * as z from 'zod';", 1],
    ["import { z, ZodError } from 'zod';", 1],
    ["import zod from 'zod';", 1],
    ["import { object } from 'zod/v4';", 1],
    ["export { ZodError } from 'zod';", 1],
    ["const zod = require('zod');", 1],
    ["const zod = await import('zod');", 1],
    ["import zod = require('zod');", 1],
    // Served: z alone, types, other modules.
    ["import { z } from 'zod';", 0],
    ["import { z as zz } from 'zod';", 0],
    ["import type { ZodError } from 'zod';", 0],
    ["import { z, type ZodType } from 'zod';", 0],
    ["export type { ZodType } from 'zod';", 0],
    ["import { z } from 'zodiac';", 0],
  ])('%s: %i found', (text, count) => {
    expect(unservedZodImports('row.ts', text)).toHaveLength(count);
  });
});
