/**
 * Every path a task file names is checked when the file is loaded, before a server, worker or
 * workflow starts: a typo in a folder name is a bad task file (exit 2, the field named), not a
 * task that fails step by step later. The paths are the resolved ones (task/load-task-file.ts
 * `resolveTaskPaths`); the field each came from is the issue's path.
 *
 * What is checked, on this machine (a deployment's workers see the same paths: README, "Where
 * each task's data lives"):
 * - `resources.workspace`: an existing folder;
 * - `resources.databases.<name>`: an existing file (the SQL capability never creates one);
 * - `${file:…}` secrets under `resources.secrets`: an existing file (never read here);
 * - `tools.mcp.<server>.command` given as an absolute path, and `grants.commands` (root and
 *   sub-agents): an installed executable, looked up as `proc.run` looks it up;
 * - `tools.mcp.<server>.cwd`: an existing folder inside the workspace.
 * Policy pack folders are checked by the policy loader (`policyPacks`), also at load.
 * Not checked: paths the task may create (`trust.workspace`, `resources.allowHostCode`,
 * `attestation.tests[].cwd`), and bare MCP server commands (found on the sandbox's PATH or among
 * packages `warden mcp install` put in the worker's cache, checked when the server starts).
 */
import * as fs from 'node:fs/promises';
import { constants } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { TaskFileIssue } from '../errors';
import { parseSecretTemplate } from '../secrets/secret-template';
import { systemView } from '../sandbox/os/system-view';
import type { Grants, Resources, Tools } from './task-schema';

type Kind = 'folder' | 'file' | 'program';

const WHAT: Record<Kind, string> = { folder: 'folder', file: 'file', program: 'program' };

/** Why `path` is not a `kind`, or undefined when it is. */
async function problemOf(path: string, kind: Kind): Promise<string | undefined> {
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `the ${WHAT[kind]} ${path} does not exist`;
    return `the ${WHAT[kind]} ${path} cannot be read (${code ?? 'error'})`;
  }
  if (kind === 'folder' && !stat.isDirectory()) return `${path} is not a folder`;
  if (kind !== 'folder' && !stat.isFile()) return `${path} is not a file`;
  if (kind === 'program') {
    try {
      await fs.access(path, constants.X_OK);
    } catch {
      return `${path} is not executable`;
    }
  }
  return undefined;
}

/** Where a bare program name is found, as `proc.run` finds it (the sandbox's system folders). */
async function programProblem(command: string): Promise<string | undefined> {
  if (command.startsWith('/')) return problemOf(command, 'program');
  const folders = systemView().path;
  for (const folder of folders) if ((await problemOf(join(folder, command), 'program')) === undefined) return undefined;
  return `program "${command}" is not installed on this machine (looked in ${folders.join(':')})`;
}

function commandIssues(grants: Pick<Grants, 'commands'>, at: string): Promise<TaskFileIssue | undefined>[] {
  return (grants.commands ?? []).map(async (command, i) => {
    const problem = await programProblem(command);
    return problem === undefined ? undefined : { path: `${at}grants.commands.${i}`, message: `${problem}; install it or remove it from grants.commands` };
  });
}

/**
 * What the path checks read of a task: a whole Task is one, and so are the paths of a task
 * document whose other fields have errors (task/partial-task.ts `taskPathsOf`).
 */
export interface TaskPaths {
  resources: Pick<Resources, 'workspace' | 'databases' | 'secrets'>;
  tools: Pick<Tools, 'mcp'>;
  grants: Pick<Grants, 'commands'>;
  subagents: Record<string, { grants: Pick<Grants, 'commands'> }>;
}

/**
 * The path problems of a task (paths already absolute), one issue per field. `baseDir` is the
 * task file's folder, named in messages about relative paths.
 */
export async function taskPathIssues(task: TaskPaths, baseDir: string): Promise<TaskFileIssue[]> {
  const hint = `(relative paths are read from the task file's folder, ${baseDir})`;
  const checks: Promise<TaskFileIssue | undefined>[] = [];
  const check = (path: string, kind: Kind, field: string, fix: string) =>
    checks.push(problemOf(path, kind).then((problem) => (problem === undefined ? undefined : { path: field, message: `${problem} ${hint}; ${fix}` })));

  const workspace = task.resources.workspace;
  if (workspace !== undefined) check(workspace, 'folder', 'resources.workspace', 'create it or correct the path');
  for (const [name, file] of Object.entries(task.resources.databases)) {
    check(file, 'file', `resources.databases.${name}`, 'Warden never creates a database: create it or correct the path');
  }
  for (const [host, headers] of Object.entries(task.resources.secrets)) {
    for (const [header, template] of Object.entries(headers)) {
      const parsed = parseSecretTemplate(template);
      if ('error' in parsed) continue;
      for (const part of parsed.parts) {
        if (typeof part !== 'string' && part.kind === 'file') check(part.path, 'file', `resources.secrets.${host}.${header}`, 'create the secret file or correct the path');
      }
    }
  }
  for (const [server, config] of Object.entries(task.tools.mcp ?? {})) {
    if (!('command' in config)) continue;
    if (isAbsolute(config.command)) {
      checks.push(problemOf(config.command, 'program').then((p) => (p === undefined ? undefined : { path: `tools.mcp.${server}.command`, message: `${p}; install it or correct the path` })));
    }
    if (workspace !== undefined && config.workspace !== 'none' && config.cwd !== '.') {
      const cwd = resolve(workspace, config.cwd);
      const inside = relative(workspace, cwd);
      if (inside.startsWith('..') || isAbsolute(inside)) {
        checks.push(Promise.resolve({ path: `tools.mcp.${server}.cwd`, message: `"${config.cwd}" is outside the workspace ${workspace}; the working folder is relative to the workspace` }));
      } else {
        checks.push(problemOf(cwd, 'folder').then((p) => (p === undefined ? undefined : { path: `tools.mcp.${server}.cwd`, message: `${p} (the working folder is relative to the workspace ${workspace}); create it or correct the path` })));
      }
    }
  }
  checks.push(...commandIssues(task.grants, ''));
  for (const [name, sub] of Object.entries(task.subagents)) checks.push(...commandIssues(sub.grants, `subagents.${name}.`));
  return (await Promise.all(checks)).filter((issue): issue is TaskFileIssue => issue !== undefined);
}
