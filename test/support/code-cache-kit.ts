/**
 * The code cache module (cli/module-code-cache.ts and the cache-dir.ts and env-switch.ts it imports) compiled to
 * JavaScript as the build compiles it (TypeScript's own transpiler), in a temporary folder of its
 * own: tests load it in real Node processes without a build.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './warden-test-env';

/** A new temporary folder holding the compiled module under lib/: the folder, and the module's path. */
export function compileCodeCacheModule(prefix: string): { root: string; cacheModule: string } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  for (const source of ['cli/module-code-cache.ts', 'cache-dir.ts', 'env-switch.ts']) {
    const out = ts.transpileModule(readFileSync(join(REPO_ROOT, source), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
    const file = join(root, 'lib', source.replace(/\.ts$/, '.js'));
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, out.outputText);
  }
  return { root, cacheModule: join(root, 'lib', 'cli', 'module-code-cache.js') };
}
