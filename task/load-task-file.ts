/**
 * Reads a task file (YAML or JSON), validates it and resolves its resource paths against the
 * file's folder. Every problem is reported with the file, the field path and what was expected;
 * nothing is dropped or guessed.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { TaskFileError, WardenError, type TaskFileIssue } from '../errors';
import { parseRule } from '../policies/engine/parse-rule';
import { resolvePackFolder } from '../policies/engine/load-pack';
import { loadPolicyEngine } from '../policies/engine/policy-engine';
import { compileToolSchema } from '../tools/tool-input-validator';
import { ungrantedCapabilities } from '../tools/tool-catalog';
import { redefinitionOf } from '../tools/subagent-tools';
import { descriptorOfUserTool } from '../tools/user-tools';
import { BUILTIN_TOOL_NAMES, TaskSchema, type Grants, type Task, type Tools } from './task-schema';

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? String(p) : String(p))).join('.');
}

/** Turns zod issues into readable ones: unions say which shapes were possible. */
export function issuesFromZod(error: z.ZodError): TaskFileIssue[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { path: pathOf(issue.path), message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` };
    }
    if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
      return { path: pathOf(issue.path), message: `required field is missing (expected ${issue.expected})` };
    }
    return { path: pathOf(issue.path), message: issue.message.replace(/^Invalid input: /, '') };
  });
}

function checkToolsAndGrants(tools: Tools, grants: Grants, task: Task, at: string, issues: TaskFileIssue[]): void {
  const prefix = at === '' ? '' : `${at}.`;
  const declared = new Set<string>(tools.builtin);
  tools.custom.forEach((tool, i) => {
    if ((BUILTIN_TOOL_NAMES as readonly string[]).includes(tool.name)) {
      issues.push({ path: `${prefix}tools.custom.${i}.name`, message: `"${tool.name}" is a built-in tool; pick another name` });
    } else if (declared.has(tool.name)) {
      issues.push({ path: `${prefix}tools.custom.${i}.name`, message: `tool "${tool.name}" is declared twice` });
    }
    declared.add(tool.name);
    try {
      compileToolSchema(tool.input);
    } catch (error) {
      issues.push({ path: `${prefix}tools.custom.${i}.input`, message: `not a valid JSON Schema: ${(error as Error).message}` });
    }
    if (tool.capabilities.some((c) => c.startsWith('fs.')) && task.resources.workspace === undefined) {
      issues.push({ path: `${prefix}tools.custom.${i}.capabilities`, message: 'file capabilities need resources.workspace' });
    }
  });
  for (const name of tools.builtin) {
    if (name.startsWith('fs.') && task.resources.workspace === undefined) {
      issues.push({ path: `${prefix}tools.builtin`, message: `${name} needs resources.workspace` });
    }
  }
  tools.custom.forEach((tool, i) => {
    if (tool.compensate === undefined) return;
    if (!tools.custom.some((t) => t.name === tool.compensate)) {
      issues.push({ path: `${prefix}tools.custom.${i}.compensate`, message: `compensating tool "${tool.compensate}" is not declared under tools.custom` });
    } else if (!grants.tools.includes(tool.compensate)) {
      issues.push({ path: `${prefix}tools.custom.${i}.compensate`, message: `compensating tool "${tool.compensate}" must be granted (it runs under the task's grant)` });
    }
  });
  grants.tools.forEach((name, i) => {
    if (!declared.has(name)) issues.push({ path: `${prefix}grants.tools.${i}`, message: `grants tool "${name}", which is not declared under tools` });
  });
  // A tool receives only the capabilities the task grants: a granted tool that declares more is refused.
  tools.custom.forEach((tool, i) => {
    if (!grants.tools.includes(tool.name)) return;
    for (const { capability, why } of ungrantedCapabilities({ grants, resources: task.resources }, descriptorOfUserTool(tool))) {
      if (capability.startsWith('fs.') && task.resources.workspace === undefined) continue; // reported above
      issues.push({
        path: `${prefix}tools.custom.${i}.capabilities.${tool.capabilities.indexOf(capability)}`,
        message: `tool "${tool.name}" declares capability "${capability}", but ${why}; a tool receives only capabilities the task grants`,
      });
    }
  });
  grants.subagents.forEach((name, i) => {
    if (task.subagents[name] === undefined) issues.push({ path: `${prefix}grants.subagents.${i}`, message: `grants sub-agent "${name}", which is not declared under subagents` });
  });
  grants.hosts.forEach((host, i) => {
    if (!task.resources.hosts.includes(host)) issues.push({ path: `${prefix}grants.hosts.${i}`, message: `grants host "${host}", which is not listed under resources.hosts` });
  });
  grants.databases.forEach((db, i) => {
    if (task.resources.databases[db] === undefined) issues.push({ path: `${prefix}grants.databases.${i}`, message: `grants database "${db}", which is not listed under resources.databases` });
  });
}

/**
 * A sub-agent's tool with the name of one of its parent's tools is the parent's definition, with
 * at most fewer capabilities: anything else (another source, input, effects, annotations,
 * compensation, or a longer timeout or more memory) would let a sub-agent redefine what a name
 * the parent granted does.
 */
function checkSubagentTools(task: Task, issues: TaskFileIssue[]): void {
  for (const [name, sub] of Object.entries(task.subagents)) {
    sub.tools.custom.forEach((tool, i) => {
      const parent = task.tools.custom.find((t) => t.name === tool.name);
      if (parent === undefined) return;
      const problem = redefinitionOf(parent, tool);
      if (problem !== undefined) {
        issues.push({ path: `subagents.${name}.tools.custom.${i}`, message: `tool "${tool.name}" is the parent's tool of that name, so it must be its definition (or narrower): ${problem}` });
      }
    });
  }
}

/** Every rule sentence must read, and every named pack must exist: a rule is never silently dropped. */
function checkPolicies(task: Task, issues: TaskFileIssue[]): void {
  const sentences = [...task.policies.map((sentence, i) => ({ sentence, path: `policies.${i}` }))];
  for (const [name, sub] of Object.entries(task.subagents)) {
    sub.policies.forEach((sentence, i) => sentences.push({ sentence, path: `subagents.${name}.policies.${i}` }));
  }
  for (const { sentence, path } of sentences) {
    try {
      parseRule(sentence);
    } catch (error) {
      if (error instanceof WardenError) issues.push({ path, message: error.message });
      else throw error;
    }
  }
  (task.policyPacks ?? []).forEach((pack, i) => {
    try {
      resolvePackFolder(pack);
    } catch (error) {
      if (error instanceof WardenError) issues.push({ path: `policyPacks.${i}`, message: error.message });
      else throw error;
    }
  });
  if (issues.length === 0) {
    try {
      loadPolicyEngine({ packs: task.policyPacks ?? ['foundation'], sentences: task.policies });
    } catch (error) {
      if (error instanceof WardenError) issues.push({ path: 'policies', message: error.message });
      else throw error;
    }
  }
}

/** Cross-field rules the schema alone cannot express: every grant names something declared. */
export function checkTaskReferences(task: Task): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  checkPolicies(task, issues);
  checkToolsAndGrants(task.tools, task.grants, task, '', issues);
  checkSubagentTools(task, issues);
  for (const [name, sub] of Object.entries(task.subagents)) {
    checkToolsAndGrants(sub.tools, sub.grants, task, `subagents.${name}`, issues);
  }
  return issues;
}

/** Something about a valid task its user should know before it runs (printed by `warden run`). */
export interface TaskNotice {
  path: string;
  message: string;
}

/**
 * What the loader tells the user about a valid task: tools that declare no effects and are
 * therefore treated as doing anything their executor allows (fail closed).
 */
export function taskNotices(task: Task): TaskNotice[] {
  const notices: TaskNotice[] = [];
  const scan = (tools: Tools, at: string) =>
    tools.custom.forEach((tool, i) => {
      const { profile } = descriptorOfUserTool(tool);
      if (profile.declared || (profile.readOnly && !profile.openWorld)) return;
      notices.push({
        path: `${at}tools.custom.${i}`,
        message:
          `tool "${tool.name}" declares no effects or annotations, so Warden treats it as doing anything its capabilities ` +
          `(${tool.capabilities.join(', ')}) allow: ${profile.destructive ? 'destructive, ' : ''}${profile.openWorld ? 'open-world, ' : ''}` +
          `in the ${profile.families.join(', ')} families; rules about those effects apply to it. Declare \`effects\` and \`annotations\` to narrow this.`,
      });
    });
  scan(task.tools, '');
  for (const [name, sub] of Object.entries(task.subagents)) scan(sub.tools, `subagents.${name}.`);
  return notices;
}

/** Makes resource paths absolute, relative to `baseDir`. */
export function resolveTaskPaths(task: Task, baseDir: string): Task {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...task,
    resources: {
      ...task.resources,
      ...(task.resources.workspace === undefined ? {} : { workspace: abs(task.resources.workspace) }),
      databases: Object.fromEntries(Object.entries(task.resources.databases).map(([k, v]) => [k, abs(v)])),
    },
  };
}

/**
 * Validates an already-parsed task document. `file` names it in errors; `baseDir` anchors
 * relative resource paths.
 */
export function parseTask(document: unknown, file: string, baseDir: string): Task {
  const parsed = TaskSchema.safeParse(document);
  if (!parsed.success) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issuesFromZod(parsed.error));
  const issues = checkTaskReferences(parsed.data);
  if (issues.length > 0) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issues);
  return resolveTaskPaths(parsed.data, baseDir);
}

/** Parses YAML (and therefore JSON) text, reporting syntax errors with line and column. */
export function parseTaskText(text: string, file: string): unknown {
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new TaskFileError('ERR_TASK_FILE_INVALID', file, [{ path: '', message: `not valid JSON: ${(error as Error).message}` }]);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new TaskFileError(
      'ERR_TASK_FILE_INVALID',
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `not valid YAML at line ${e.linePos?.[0]?.line ?? '?'}, column ${e.linePos?.[0]?.col ?? '?'}: ${e.message.split('\n')[0]}`,
      })),
    );
  }
  return doc.toJS() as unknown;
}

/** Loads, validates and resolves a task file. Throws TaskFileError (exit code 2 in the CLI). */
export async function loadTaskFile(file: string): Promise<Task> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TaskFileError('ERR_TASK_FILE_UNREADABLE', file, [{ path: '', message: code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? 'error'})` }], error);
  }
  return parseTask(parseTaskText(text, file), file, dirname(resolve(file)));
}
