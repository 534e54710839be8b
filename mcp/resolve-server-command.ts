/**
 * `npx -y <package> args…` without npx: a stdio server's sandbox has no network, so the package
 * must already be installed (`warden mcp install <package>` puts it in the MCP packages folder).
 * Warden resolves the package's executable there itself instead of running npx, which would try
 * the registry; nothing is ever fetched when a task starts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { McpError } from '../errors';

export interface ResolvedServerCommand {
  command: string;
  args: string[];
  /** Host folders the server needs read-only (the packages' node_modules). */
  readOnlyPaths: string[];
  /** Folders to put first on PATH inside the sandbox. */
  pathPrepend: string[];
}

/** Default MCP packages folder: `<cacheDir>/mcp-packages` (holds package.json and node_modules). */
export function defaultMcpPackagesDir(cacheDir: string): string {
  return path.join(cacheDir, 'mcp-packages');
}

/**
 * The program to run for a stdio server. `npx`/`npm exec` forms are resolved against
 * `packagesDir/node_modules`; anything else runs as given, with the packages' `.bin` first on
 * PATH. Throws McpError ERR_MCP_NOT_INSTALLED naming the install command when the package is missing.
 */
export function resolveServerCommand(server: string, command: string, args: readonly string[], packagesDir: string | undefined): ResolvedServerCommand {
  const modules = packagesDir === undefined ? undefined : path.join(packagesDir, 'node_modules');
  const hasModules = modules !== undefined && fs.existsSync(modules);
  const base = { readOnlyPaths: hasModules ? [modules] : [], pathPrepend: hasModules ? [path.join(modules, '.bin')] : [] };
  const npxArgs = command === 'npx' ? [...args] : command === 'npm' && (args[0] === 'exec' || args[0] === 'x') ? args.slice(1) : undefined;
  if (npxArgs === undefined) return { command, args: [...args], ...base };

  let index = 0;
  while (index < npxArgs.length && npxArgs[index]!.startsWith('-') && npxArgs[index] !== '--') index += 1;
  if (npxArgs[index] === '--') index += 1;
  const spec = npxArgs[index];
  if (spec === undefined) throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: "${command} ${args.join(' ')}" names no package`, { details: { server } });
  const rest = npxArgs.slice(index + 1);
  const name = packageNameOf(spec);
  const install = `warden mcp install ${spec}`;
  if (!hasModules) {
    throw new McpError('ERR_MCP_NOT_INSTALLED', `MCP server ${server}: package ${name} is not installed (no MCP packages folder); run: ${install}`, {
      details: { server, package: name },
    });
  }
  const packageDir = path.join(modules!, ...name.split('/'));
  let manifest: { bin?: string | Record<string, string>; name?: string };
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  } catch {
    throw new McpError('ERR_MCP_NOT_INSTALLED', `MCP server ${server}: package ${name} is not installed in ${packagesDir}; run: ${install}`, {
      details: { server, package: name },
    });
  }
  const bin = binOf(manifest, name);
  if (bin === undefined) throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: package ${name} has no executable ("bin")`, { details: { server, package: name } });
  const executable = path.resolve(packageDir, bin);
  if (!executable.startsWith(`${packageDir}${path.sep}`)) {
    throw new McpError('ERR_MCP_UNAVAILABLE', `MCP server ${server}: package ${name} names an executable outside itself`, { details: { server, package: name } });
  }
  return { command: 'node', args: [executable, ...rest], ...base };
}

/** `@scope/name@1.2.3` → `@scope/name`; `name@latest` → `name`. */
function packageNameOf(spec: string): string {
  const at = spec.startsWith('@') ? spec.indexOf('@', 1) : spec.indexOf('@');
  return at > 0 ? spec.slice(0, at) : spec;
}

function binOf(manifest: { bin?: string | Record<string, string> }, name: string): string | undefined {
  if (typeof manifest.bin === 'string') return manifest.bin;
  if (manifest.bin === undefined || typeof manifest.bin !== 'object') return undefined;
  const entries = Object.entries(manifest.bin);
  const plain = name.split('/').pop()!;
  return (manifest.bin[plain] ?? (entries.length === 1 ? entries[0]![1] : undefined)) as string | undefined;
}
