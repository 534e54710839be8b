/**
 * The scope of one tool call: the exact resources it touches, derived from the tool and its
 * arguments. The worker mints the call's credential with it and the sandbox host verifies the
 * credential against it, both through this one function, so they cannot disagree.
 */
import { ToolError } from '../errors';
import { fsScope, httpScope, sqlScope } from '../identity/call-scope';

function text(args: Record<string, unknown>, name: string, fallback?: string): string {
  const value = args[name] ?? fallback;
  if (typeof value !== 'string') throw new ToolError('ERR_TOOL_INPUT_INVALID', `argument "${name}" must be a string`);
  return value;
}

/** Scope strings for a call of `tool` with `args` (built-ins precisely; user tools as `<tool>:invoke`). */
export function scopeOfCall(tool: string, args: Record<string, unknown>): string[] {
  try {
    switch (tool) {
      case 'fs.read':
        return [fsScope('read', text(args, 'path'))];
      case 'fs.write':
        return [fsScope('write', text(args, 'path'))];
      case 'fs.list':
        return [fsScope('list', text(args, 'path', '.'))];
      case 'http.fetch':
        return [httpScope(text(args, 'method', 'GET'), text(args, 'url'))];
      case 'sql.query':
        return [sqlScope('query', text(args, 'database'))];
      case 'sql.exec':
        return [sqlScope('exec', text(args, 'database'))];
      default:
        return [`${tool}:invoke`];
    }
  } catch (error) {
    if (error instanceof ToolError) throw error;
    throw new ToolError('ERR_TOOL_INPUT_INVALID', `arguments of ${tool} do not name a valid resource: ${(error as Error).message}`);
  }
}
