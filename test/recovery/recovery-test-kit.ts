/** Shared pieces of the recovery tests: real temp folders and a small workspace. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CapabilityError, WardenError } from '../../errors';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

export { makeTempDir };

/** The code a synchronous or asynchronous operation fails with ("no error" when it succeeds). */
export async function codeOf(operation: () => unknown): Promise<string> {
  try {
    await operation();
  } catch (error) {
    if (error instanceof WardenError || error instanceof CapabilityError) return error.code;
    throw error;
  }
  return 'no error';
}

export function codeThrownBy(operation: () => unknown): string {
  try {
    operation();
  } catch (error) {
    if (error instanceof WardenError) return error.code;
    throw error;
  }
  return 'no error';
}

/** Writes `files` (relative path -> content) under `root`. */
export function writeTree(root: string, files: Record<string, string>): void {
  for (const [relative, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    fs.writeFileSync(path.join(root, relative), content);
  }
}

export function read(root: string, relative: string): string | undefined {
  try {
    return fs.readFileSync(path.join(root, relative), 'utf8');
  } catch {
    return undefined;
  }
}

/** Every file under `root` (relative, sorted), for "nothing else changed" assertions. */
export function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const absolute = path.join(folder, entry.name);
      if (entry.isDirectory()) visit(absolute);
      else if (entry.isFile()) out[path.relative(root, absolute)] = fs.readFileSync(absolute, 'utf8');
    }
  };
  visit(root);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
