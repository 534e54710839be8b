/**
 * Scope strings of one tool call: the resources that call touches, written the same way by the
 * worker that mints the credential and by the host that verifies it, so coverage is an exact
 * string match.
 *
 *   fs.read:notes.txt                         fs.<read|write|list>:<normalized relative path>
 *   http.fetch:GET:api.example.com/v1/items   http.fetch:<METHOD>:<host[:port]><path>  (no query)
 *   sql.exec:db:inventory                     sql.<query|exec>:db:<database name>
 *   proc.run:pytest                           proc.run:<program as granted>
 *   word-count:invoke                         <tool>:<anything>  (user-defined tools)
 *
 * Invariant: a credential is never minted for a scope its task grant does not cover (the tool and
 * every capability named must be granted; hosts and databases must be granted).
 *
 * Pure (zod only): workflow code may import this file.
 */
import { z } from 'zod';
import type { GrantSet } from './claims';
import { cutText } from '../cut-text';

const MAX_SCOPE_LENGTH = 2048;

export const ScopeSchema = z
  .string()
  .max(MAX_SCOPE_LENGTH)
  .regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*:.+$/s, 'a scope "<tool or capability>:<resource>"');

/** `fs.<op>:<path>`; the path is normalized (POSIX) so `./a//b` and `a/b` are the same scope. */
export function fsScope(op: 'read' | 'write' | 'list', path: string = '.'): string {
  return `fs.${op}:${normalizePosixPath(path)}`;
}

/** `path.posix.normalize` without `node:path` (this file must stay importable by workflow code). */
function normalizePosixPath(path: string): string {
  const absolute = path.startsWith('/');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && parts.length > 0 && parts.at(-1) !== '..') parts.pop();
    else if (part !== '..' || !absolute) parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? `/${joined}` : joined === '' ? '.' : joined;
}

/** `http.fetch:<METHOD>:<host[:port]><path>` of a URL; the query and fragment are left out. */
export function httpScope(method: string, url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${url}`);
  return `http.fetch:${method.toUpperCase()}:${parsed.host}${parsed.pathname}`;
}

/** `sql.<op>:db:<database>`. */
export function sqlScope(op: 'query' | 'exec', database: string): string {
  return `sql.${op}:db:${database}`;
}

export interface ParsedScope {
  /** The tool or capability the scope is for (`fs.read`, `http.fetch`, `word-count`). */
  action: string;
  /** Everything after the first ":". */
  resource: string;
  /** For `http.fetch`: the `host[:port]` reached. */
  host?: string;
  /** For `sql.*`: the database name. */
  database?: string;
  /** For `proc.run`: the program started. */
  command?: string;
}

export function parseScope(scope: string): ParsedScope {
  const parsed = ScopeSchema.safeParse(scope);
  if (!parsed.success) throw new TypeError(`not a scope: ${JSON.stringify(cutText(scope, 100))}`);
  const colon = scope.indexOf(':');
  const action = scope.slice(0, colon);
  const resource = scope.slice(colon + 1);
  if (action === 'http.fetch') {
    const match = /^([A-Z]+):([^/\s]+)(\/.*)?$/s.exec(resource);
    if (match === null) throw new TypeError(`not an http.fetch scope: ${JSON.stringify(cutText(scope, 100))}`);
    return { action, resource, host: match[2] as string };
  }
  if (action === 'proc.run') return { action, resource, command: resource };
  if (action === 'sql.query' || action === 'sql.exec') {
    if (!resource.startsWith('db:') || resource.length === 3) throw new TypeError(`not a ${action} scope: ${JSON.stringify(cutText(scope, 100))}`);
    return { action, resource, database: resource.slice(3) };
  }
  return { action, resource };
}

/**
 * Why `scope` for a call of `tool` is not covered by `grants`, or `null` when it is. The reason
 * names the exact entry, e.g. `scope "http.fetch:GET:evil.example/x": host "evil.example" is not granted`.
 */
export function scopeOutsideGrant(grants: GrantSet, tool: string, scope: readonly string[]): string | null {
  if (!grants.tools.includes(tool)) return `tool "${tool}" is not granted`;
  for (const entry of scope) {
    let parsed: ParsedScope;
    try {
      parsed = parseScope(entry);
    } catch (error) {
      return (error as Error).message;
    }
    if (!grants.tools.includes(parsed.action)) return `scope "${entry}": "${parsed.action}" is not granted`;
    if (parsed.host !== undefined && !grants.hosts.includes(parsed.host)) return `scope "${entry}": host "${parsed.host}" is not granted`;
    if (parsed.command !== undefined && !(grants.commands ?? []).includes(parsed.command)) return `scope "${entry}": program "${parsed.command}" is not granted`;
    if (parsed.database !== undefined && !grants.databases.includes(parsed.database)) {
      return `scope "${entry}": database "${parsed.database}" is not granted`;
    }
  }
  return null;
}
