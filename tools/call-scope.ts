/**
 * The scope of one tool call: the exact resources it touches, derived from the tool's descriptor
 * and its arguments, plus the host capabilities the call is handed. The worker mints the call's
 * credential with it and the sandbox host verifies the credential against it, both through
 * `requiredScopeOf`, so they cannot disagree.
 *
 *   built-in       fs.read:notes.txt · http.fetch:GET:host/path · sql.exec:db:inventory
 *                  (from the descriptor's path, URL or SQL argument)
 *   any other      <tool>:invoke, plus one scope per capability it is handed:
 *                  fs.<read|write|list>:* · http.fetch:ANY:<host> · sql.<query|exec>:db:<database>
 *
 * So a user tool's credential names every capability and resource it may use, and a request
 * carrying a capability its credential does not name is refused by the host before any code
 * runs; a built-in is only ever handed its own capability.
 *
 * Pure: workflow code may import this file.
 */
import { ToolError } from '../errors';
import { fsScope, httpScope, sqlScope } from '../identity/call-scope';
import type { CapabilityGrant } from '../sandbox/sandbox-messages';
import { getBuiltinTool as getCapabilityTool } from './builtin-tools';
import { getProcessTool } from './process-tools';

function getBuiltinTool(name: string) {
  return getCapabilityTool(name) ?? getProcessTool(name);
}
import type { ToolDescriptor } from './tool-descriptor';
import { valuesAt } from './argument-values';

function text(args: Record<string, unknown>, pointer: string, fallback?: string): string {
  const [value = fallback] = valuesAt(args, pointer);
  if (typeof value !== 'string') throw new ToolError('ERR_TOOL_INPUT_INVALID', `argument "${pointer.slice(1)}" must be a string`);
  return value;
}

/** Scope strings of the resources a call of `tool` with `args` names (built-ins precisely; other tools as `<tool>:invoke`). */
export function scopeOfCall(tool: string | ToolDescriptor, args: Record<string, unknown>): string[] {
  const descriptor = typeof tool === 'string' ? getBuiltinTool(tool) : tool;
  const name = typeof tool === 'string' ? tool : tool.name;
  if (descriptor !== undefined && descriptor.executor.kind === 'process') return [`${name}:${text(args, '/command')}`];
  if (descriptor === undefined || descriptor.executor.kind !== 'builtin') return [`${name}:invoke`];
  const capability = descriptor.executor.capability;
  const effects = descriptor.effects;
  try {
    switch (capability) {
      case 'fs.read':
      case 'fs.write':
      case 'fs.list': {
        const path = effects.paths[0]!;
        return [fsScope(capability.slice(3) as 'read' | 'write' | 'list', text(args, path.arg, path.default))];
      }
      case 'http.fetch': {
        const url = effects.urls[0]!;
        return [httpScope(url.method === undefined ? 'GET' : text(args, url.method, 'GET'), text(args, url.arg))];
      }
      case 'sql.query':
      case 'sql.exec':
        return [sqlScope(capability.slice(4) as 'query' | 'exec', text(args, effects.sql[0]!.database))];
    }
  } catch (error) {
    if (error instanceof ToolError) throw error;
    throw new ToolError('ERR_TOOL_INPUT_INVALID', `arguments of ${name} do not name a valid resource: ${(error as Error).message}`);
  }
}

/** One scope per capability (and granted resource) in `grant`: what a tool handed that grant may use. */
export function capabilityScopes(grant: CapabilityGrant): string[] {
  const scopes: string[] = [];
  if (grant.fs?.read === true) scopes.push('fs.read:*');
  if (grant.fs?.write === true) scopes.push('fs.write:*');
  if (grant.fs?.list === true) scopes.push('fs.list:*');
  for (const entry of grant.http?.allowedHosts ?? []) scopes.push(`http.fetch:ANY:${typeof entry === 'string' ? entry : entry.host}`);
  for (const database of Object.keys(grant.sql?.databases ?? {}).sort()) {
    if (grant.sql?.query === true) scopes.push(sqlScope('query', database));
    if (grant.sql?.exec === true) scopes.push(sqlScope('exec', database));
  }
  return [...new Set(scopes)];
}

/** The capability names a grant hands out. */
function capabilitiesIn(grant: CapabilityGrant): string[] {
  const names: string[] = [];
  if (grant.fs?.read === true) names.push('fs.read');
  if (grant.fs?.write === true) names.push('fs.write');
  if (grant.fs?.list === true) names.push('fs.list');
  if (grant.http !== undefined) names.push('http.fetch');
  if (grant.sql?.query === true) names.push('sql.query');
  if (grant.sql?.exec === true) names.push('sql.exec');
  return names;
}

/**
 * Everything a call's credential must cover: the resources its arguments name and, for anything
 * but a built-in, every capability it is handed. Throws ToolError ERR_CAPABILITY_NOT_GRANTED when
 * a built-in is handed any capability but its own.
 */
export function requiredScopeOf(tool: string | ToolDescriptor, args: Record<string, unknown>, grant: CapabilityGrant): string[] {
  const descriptor = typeof tool === 'string' ? getBuiltinTool(tool) : tool;
  const scope = scopeOfCall(tool, args);
  if (descriptor !== undefined && descriptor.executor.kind === 'builtin') {
    const own = descriptor.executor.capability;
    const other = capabilitiesIn(grant).filter((c) => c !== own);
    if (other.length > 0) throw new ToolError('ERR_CAPABILITY_NOT_GRANTED', `built-in ${descriptor.name} is only ever handed ${own}, not ${other.join(', ')}`);
    return scope;
  }
  return [...scope, ...capabilityScopes(grant)];
}
