/**
 * Reads rule packs from disk: a folder with `rules.txt`, one sentence a line, `#` comment lines,
 * and `@extends <pack>` lines naming a sibling pack whose rules come first. Every sentence gets
 * a stable id `<pack>:<line>` and a source `<file>:<line>` for error messages.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { PolicyError } from '../../errors';
import { readUserFileSync, UserFileError } from '../../regular-file';

/** The folder holding the bundled packs (foundation, enterprise, advanced). */
export const PACKS_DIR = resolve(__dirname, '..');

export interface PackSentence {
  id: string;
  sentence: string;
  source: string;
  /** `shadow`: recorded, never enforced (`@mode shadow` in the file, or the pack named as `shadow:<pack>`). */
  enforcement?: 'enforce' | 'shadow';
}

export interface PackFile {
  name: string;
  folder: string;
  extends: string[];
  sentences: PackSentence[];
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** Whether `name` is a bare name (no path separator) of a pack bundled with Warden. */
export function isBundledPackName(name: string): boolean {
  return !/[/\\]/.test(name) && name !== '.' && name !== '..' && existsSync(join(PACKS_DIR, name, 'rules.txt'));
}

/**
 * A pack by folder path, or by the name of a bundled pack ("foundation"). The name of a bundled
 * pack always means the bundled pack: a folder of that name in the working folder or beside the
 * task file (a cloned repository, files an agent wrote) must not replace the default guardrails;
 * such a folder is named by a path (`./foundation`).
 */
export function resolvePackFolder(nameOrFolder: string, relativeTo?: string): string {
  const candidates: string[] = [];
  const bareName = !nameOrFolder.includes('/') && !nameOrFolder.includes('\\');
  if (isAbsolute(nameOrFolder)) candidates.push(nameOrFolder);
  else if (isBundledPackName(nameOrFolder)) candidates.push(join(PACKS_DIR, nameOrFolder));
  else {
    if (relativeTo !== undefined) candidates.push(join(relativeTo, nameOrFolder));
    candidates.push(resolve(nameOrFolder));
    if (bareName) candidates.push(join(PACKS_DIR, nameOrFolder));
  }
  for (const candidate of candidates) {
    if (!isDirectory(candidate) || !existsSync(join(candidate, 'rules.txt'))) continue;
    // Found, but a rules.txt that is a FIFO, device or folder is refused here, naming the pack, never read.
    if (!statSync(join(candidate, 'rules.txt')).isFile()) {
      throw new PolicyError('ERR_POLICY_INVALID', `policy pack "${nameOrFolder}": ${join(candidate, 'rules.txt')} is not a regular file`, { details: { pack: nameOrFolder, file: join(candidate, 'rules.txt') } });
    }
    return realpathSync(candidate);
  }
  throw new PolicyError('ERR_POLICY_PACK_NOT_FOUND', `no policy pack "${nameOrFolder}": expected a folder with a rules.txt (looked at ${candidates.join(', ')})`, {
    details: { pack: nameOrFolder, looked: candidates },
  });
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

/** Reads one pack's rules.txt (without following @extends). */
export function readPackFile(folder: string): PackFile {
  return readRuleFile(join(folder, 'rules.txt'), basename(folder));
}

/** Reads a file of rule sentences (the rules.txt format); ids are `<name>:<line>`. */
export function readRuleFile(file: string, name: string): PackFile {
  let text: string;
  try {
    // The reader of every user's file (../../regular-file.ts): the same checks and words as a task file's.
    text = readUserFileSync(file, { what: 'rule file' });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    const missing = error.kind === 'missing' || error.kind === 'unreadable';
    throw new PolicyError(missing ? 'ERR_POLICY_PACK_NOT_FOUND' : 'ERR_POLICY_INVALID', error.message, { details: { file }, cause: error });
  }
  const pack: PackFile = { name, folder: dirname(file), extends: [], sentences: [] };
  let mode: 'enforce' | 'shadow' = 'enforce';
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const lineNumber = index + 1;
    if (line === '' || line.startsWith('#')) return;
    const source = `${displayPath(file)}:${lineNumber}`;
    if (line.startsWith('@extends')) {
      const parent = line.slice('@extends'.length).trim();
      if (parent === '' || parent.includes(' ')) {
        throw new PolicyError('ERR_POLICY_INVALID', `${source}: "@extends" takes one pack name, e.g. "@extends foundation"`, { details: { source, line } });
      }
      pack.extends.push(parent);
      return;
    }
    if (line.startsWith('@mode')) {
      const value = line.slice('@mode'.length).trim();
      if (value !== 'shadow' && value !== 'enforce') throw new PolicyError('ERR_POLICY_INVALID', `${source}: "@mode" is "shadow" or "enforce"`, { details: { source, line } });
      mode = value;
      return;
    }
    if (line.startsWith('@')) throw new PolicyError('ERR_POLICY_INVALID', `${source}: unknown directive "${line}" (known: "@extends <pack>", "@mode shadow|enforce")`, { details: { source, line } });
    pack.sentences.push({ id: `${name}:${lineNumber}`, sentence: line, source, ...(mode === 'shadow' ? { enforcement: mode } : {}) });
  });
  return pack;
}

/**
 * The sentences of the given packs, each pack after the packs it extends, each pack once even
 * when several extend it. Throws on a missing pack or an @extends cycle.
 */
export function readPacks(packs: readonly string[], relativeTo?: string): PackSentence[] {
  const done = new Set<string>();
  const out: PackSentence[] = [];
  const visit = (nameOrFolder: string, base: string | undefined, path: readonly string[]): void => {
    const folder = resolvePackFolder(nameOrFolder, base);
    if (path.includes(folder)) {
      throw new PolicyError('ERR_POLICY_INVALID', `policy packs extend each other in a cycle: ${[...path, folder].map((p) => basename(p)).join(' -> ')}`, {
        details: { cycle: [...path, folder] },
      });
    }
    if (done.has(folder)) return;
    const pack = readPackFile(folder);
    for (const parent of pack.extends) visit(parent, dirname(folder), [...path, folder]);
    done.add(folder);
    out.push(...pack.sentences);
  };
  for (const entry of packs) {
    // "shadow:<pack>": the pack's own rules are recorded, not enforced (packs it extends are read as usual).
    const { pack, shadow } = packEntryOf(entry);
    const before = out.length;
    visit(pack, relativeTo, []);
    if (shadow) {
      const folder = resolvePackFolder(pack, relativeTo);
      const own = new Set(readPackFile(folder).sentences.map((s) => s.id));
      for (let i = before; i < out.length; i += 1) if (own.has(out[i]!.id)) out[i] = { ...out[i]!, enforcement: 'shadow' };
    }
  }
  return out;
}

/** A `policyPacks` entry: a pack, optionally prefixed `shadow:`. */
export function packEntryOf(entry: string): { pack: string; shadow: boolean } {
  return entry.startsWith('shadow:') ? { pack: entry.slice('shadow:'.length), shadow: true } : { pack: entry, shadow: false };
}
