/**
 * Reads a task file (YAML or JSON), validates it and resolves its resource paths against the
 * file's folder. Every problem is reported with the file, the field path and what was expected;
 * nothing is dropped or guessed.
 */
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { yamlPackage } from './yaml-package';
import { jsonSyntaxProblem } from '../json-syntax';
import type { z } from 'zod';
import { TaskFileError, WardenError, type TaskFileIssue } from '../errors';
import { readUserFile, UserFileError } from '../regular-file';
import { parseRule } from '../policies/engine/parse-rule';
import { isResponseRule, parseResponseRule } from '../policies/engine/parse-response-rule';
import { effectivePolicyPacks } from '../permissions/task-narrowing';
import { isBundledPackName, packEntryOf, resolvePackFolder } from '../policies/engine/load-pack';
import { checkPolicyRules } from '../policies/engine/policy-engine';
import { loadResponseRules } from '../monitoring/load-response-rules';
import { compileToolSchema } from '../tools/tool-input-validator';
import { emptyCapabilityGrants, resolveTool, ungrantedCapabilities } from '../tools/tool-catalog';
import { grantListWidenings } from '../identity/delegation';
import { redefinitionOf } from '../tools/subagent-tools';
import { descriptorOfUserTool } from '../tools/user-tools';
import { mapFilePaths, parseSecretTemplate } from '../secrets/secret-template';
import { secretOriginOf } from '../secrets/secret-origin';
import { BUILTIN_TOOL_NAMES, TaskSchema, type Grants, type Task, type Tools } from './task-schema';
import { fromWardenToolPart } from '../mcp/mcp-tool-names';
import { mcpServerNameProblem } from '../mcp/mcp-server-config';
import {
  bracketDepthExceeded,
  checkDocumentLimits,
  lineColumnOf,
  MAX_LIBRARY_TIMEOUT_MS,
  MAX_TASK_FILE_BYTES,
  MAX_TASK_NESTING,
  MAX_YAML_ALIASES,
} from './task-file-limits';
import { locatedIssue, taskFileLocator, type TaskFileLocator } from './task-file-locations';
import { fieldsAt, nearestName, unknownFieldMessage } from './field-suggestions';
import { PROCESS_TOOL_NAMES } from '../tools/process-tools';
import { taskPathIssues, type TaskPaths } from './task-path-issues';
import { toolSourceIssues } from './tool-source-issues';
import { parsedFields, taskPathsOf } from './partial-task';
import { dataFlowIssues } from './data-flow-eligibility';
import { durationToMs } from './duration';

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? String(p) : String(p))).join('.');
}

const atRoot = (i: z.core.$ZodIssue) => i.path.length === 0 && i.code !== 'invalid_union';
const missingField = (i: z.core.$ZodIssue) => i.path.length === 1 && i.code === 'invalid_type' && / received undefined$/.test(i.message);

/**
 * A union issue whose value plainly is one option (the others fail at the value itself, and it
 * either is of no other option's type or has every field that option needs) is that option's
 * issues, so `script.0` becomes `script.0.claims.1.database: required field is missing`;
 * otherwise (the value could be meant as several options) the union's own message.
 */
function expandUnions(issues: readonly z.core.$ZodIssue[], base: readonly PropertyKey[] = []): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    const path = [...base, ...issue.path];
    if (issue.code !== 'invalid_union' || !Array.isArray(issue.errors)) return [{ ...issue, path }];
    const fitting = issue.errors.filter((branch) => branch.length > 0 && !branch.some(atRoot));
    const chosen = fitting[0];
    if (fitting.length !== 1 || chosen === undefined) return [{ ...issue, path }];
    const othersAreOtherTypes = issue.errors.every((branch) => branch === chosen || branch.some((i) => atRoot(i) && i.code === 'invalid_type'));
    if (!othersAreOtherTypes && chosen.some(missingField)) return [{ ...issue, path }];
    return expandUnions(chosen, path);
  });
}

/** Fields Warden sets itself: never offered as what a mistyped field meant. */
const SET_BY_WARDEN = ['mcpPinned', 'mcpPins', 'source'];

/**
 * Turns zod issues into readable ones: unions say which shapes were possible, an unknown field
 * says which field it most likely means (one issue per field). With `locator`, each issue says
 * where in the file it is (an unknown field at its key).
 */
export function issuesFromZod(error: z.ZodError, locator?: TaskFileLocator, document?: unknown): TaskFileIssue[] {
  const unknownField = (path: readonly PropertyKey[], key: string) =>
    locatedIssue({ path: pathOf(path), message: unknownFieldMessage(TaskSchema, path, key, SET_BY_WARDEN, document) }, locator, [...path, key]);
  return expandUnions(error.issues).flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownField(issue.path, key));
    // A value that fits none of a union's shapes: its fields no shape has are most likely typos.
    const typos = issue.code === 'invalid_union' ? unknownFieldsOf(valueAt(document, issue.path), fieldsAt(TaskSchema, issue.path, document)) : [];
    return [locatedIssue(readableIssue(issue), locator, issue.path), ...typos.map((key) => unknownField(issue.path, key))];
  });
}

function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let value = document;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/** Keys of a plain object that are none of `fields` (nothing when `fields` is empty: no object shape there). */
function unknownFieldsOf(value: unknown, fields: readonly string[]): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || fields.length === 0) return [];
  return Object.keys(value).filter((key) => !fields.includes(key));
}

/** What a task file holds when it is not a mapping, in the words `warden run` and `warden policy compile` use. */
function notAMappingIssue(what: string): TaskFileIssue {
  return { path: '', message: `the file holds ${what}: a task file is a mapping of fields (user, intent, agent, …; examples/hello.yaml is one)` };
}

/** The issue of a parsed task document that is not a mapping (empty, a list, a scalar); undefined when it is one. */
export function taskDocumentShapeIssue(document: unknown): TaskFileIssue | undefined {
  if (typeof document === 'object' && document !== null && !Array.isArray(document)) return undefined;
  return notAMappingIssue(document === null || document === undefined ? 'nothing' : Array.isArray(document) ? 'a list' : `a ${typeof document}`);
}

/** One zod issue in words. */
function readableIssue(issue: z.core.$ZodIssue): TaskFileIssue {
  if (issue.path.length === 0 && issue.code === 'invalid_type') {
    const found = / received (\w+)$/.exec(issue.message)?.[1];
    return notAMappingIssue(found === undefined || found === 'null' || found === 'undefined' ? 'nothing' : `a ${found === 'array' ? 'list' : found}`);
  }
  if (issue.code === 'invalid_key') {
    // A record key that breaks its rule: say which rule, not "Invalid key in record".
    return { path: pathOf(issue.path), message: `the key is invalid: ${issue.issues.map((i) => i.message.replace(/^Invalid input: /, '')).join('; ')}` };
  }
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
    return { path: pathOf(issue.path), message: `required field is missing (expected ${issue.expected})` };
  }
  return { path: pathOf(issue.path), message: issue.message.replace(/^Invalid input: /, '') };
}

/** The fields the cross-field checks read: they run on these alone when other fields have errors. */
const REFERENCE_FIELDS = ['resources', 'policies', 'policyPacks', 'subagents', 'tools', 'grants'] as const;
type TaskReferences = Pick<Task, (typeof REFERENCE_FIELDS)[number]>;

/** `; did you mean "x"?` when `name` is a likely typo of one of `known`, else nothing. */
function didYouMean(name: string, known: Iterable<string>): string {
  const guess = nearestName(name, [...known]);
  return guess === undefined ? '' : `; did you mean "${guess}"?`;
}

/**
 * Durations only a library's own timer measures, at most 24 days (`MAX_LIBRARY_TIMEOUT_MS`): a
 * model's `requestTimeout` (the provider SDK's) and an MCP server's `timeout` (the MCP SDK's); each
 * arms one Node timer, which holds at most 2^31 - 1 ms (long-timer.ts). Checked where a task file
 * is read, not in the task schema, which the workflow parses its input with: a task started before
 * with such a value still replays.
 */
function checkLibraryTimeouts(agent: Task['agent'] | undefined, tools: Tools, prefix: string, issues: TaskFileIssue[]): void {
  const tooLong = (what: string) => `at most ${MAX_LIBRARY_TIMEOUT_MS / 86_400_000} days (${MAX_LIBRARY_TIMEOUT_MS / 3_600_000}h): ${what} timer holds no more`;
  const model = agent?.model;
  if (model !== undefined && 'requestTimeout' in model && durationToMs(model.requestTimeout) > MAX_LIBRARY_TIMEOUT_MS) {
    issues.push({ path: `${prefix}agent.model.requestTimeout`, message: tooLong("the provider SDK's") });
  }
  for (const [server, config] of Object.entries(tools.mcp ?? {})) {
    if (config.timeout !== undefined && durationToMs(config.timeout) > MAX_LIBRARY_TIMEOUT_MS) issues.push({ path: `${prefix}tools.mcp.${server}.timeout`, message: tooLong("the MCP SDK's") });
  }
}

function checkToolsAndGrants(tools: Tools, grants: Grants, task: TaskReferences, at: string, issues: TaskFileIssue[]): void {
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
  checkMcpAndCommands(tools, grants, task, prefix, issues);
  const servers = Object.keys(tools.mcp ?? {});
  grants.tools.forEach((name, i) => {
    if (declared.has(name)) return;
    const server = servers.find((s) => name.startsWith(`${s}.`));
    // An MCP server's tools are listed when the task starts; the grant names one in Warden's form.
    if (server !== undefined && fromWardenToolPart(name.slice(server.length + 1)) !== undefined) return;
    if (server !== undefined) {
      issues.push({ path: `${prefix}grants.tools.${i}`, message: `"${name}" is not the Warden form of an MCP tool name of server "${server}" (e.g. createIssue is "${server}.create-issue")` });
      return;
    }
    const builtin = (BUILTIN_TOOL_NAMES as readonly string[]).includes(name) ? `; declare it under ${prefix}tools.builtin` : didYouMean(name, declared);
    issues.push({ path: `${prefix}grants.tools.${i}`, message: `grants tool "${name}", which is not declared under tools${builtin}` });
  });
  // A tool receives only the capabilities the task grants: a granted tool that declares more is refused.
  tools.custom.forEach((tool, i) => {
    if (!grants.tools.includes(tool.name)) return;
    for (const { capability, why } of ungrantedCapabilities({ grants, resources: task.resources, tools }, descriptorOfUserTool(tool))) {
      // A granted fs capability without a workspace is reported above; an ungranted one still gets its advice now (one round).
      if (grants.tools.includes(capability)) continue;
      // A sub-agent gets no more than the scopes that spawn it: the advice names them too, or following it leads to a refused spawn.
      const lacking = at === '' ? [] : spawnersOf(task, at.slice('subagents.'.length)).filter((spawner) => !spawner.grants.tools.includes(capability));
      const parents = lacking.length === 0 ? '' : `; its parent must grant it too (a sub-agent gets no more than its parent): add it to ${lacking.map((spawner) => `${spawner.at}grants.tools`).join(' and ')}${lacking.some((spawner) => !(spawner.tools.builtin as readonly string[]).includes(capability)) ? ` and declare it under ${lacking.map((spawner) => `${spawner.at}tools.builtin`).join(' and ')}` : ''}`;
      issues.push({
        path: `${prefix}tools.custom.${i}.capabilities.${tool.capabilities.indexOf(capability)}`,
        message: `tool "${tool.name}" declares capability "${capability}", but ${why}; a tool receives only capabilities the task grants${parents}`,
      });
    }
  });
  grants.subagents.forEach((name, i) => {
    if (task.subagents[name] === undefined) issues.push({ path: `${prefix}grants.subagents.${i}`, message: `grants sub-agent "${name}", which is not declared under subagents${didYouMean(name, Object.keys(task.subagents))}` });
  });
  grants.hosts.forEach((host, i) => {
    if (!task.resources.hosts.includes(host)) issues.push({ path: `${prefix}grants.hosts.${i}`, message: `grants host "${host}", which is not listed under resources.hosts${didYouMean(host, task.resources.hosts)}` });
  });
  grants.databases.forEach((db, i) => {
    if (task.resources.databases[db] === undefined) issues.push({ path: `${prefix}grants.databases.${i}`, message: `grants database "${db}", which is not listed under resources.databases${didYouMean(db, Object.keys(task.resources.databases))}` });
  });
  (grants.tables ?? []).forEach((entry, i) => {
    const table = typeof entry === 'string' ? entry : entry.table;
    const database = table.slice(0, table.indexOf('.'));
    if (!grants.databases.includes(database)) issues.push({ path: `${prefix}grants.tables.${i}`, message: `grants table "${table}" of database "${database}", which is not granted under grants.databases` });
  });
}

/** MCP servers (no shadowing, hosts granted, no pinned lists in files) and `proc.run`'s programs. */
function checkMcpAndCommands(tools: Tools, grants: Grants, task: TaskReferences, prefix: string, issues: TaskFileIssue[]): void {
  if (tools.mcpPinned !== undefined) {
    issues.push({ path: `${prefix}tools.mcpPinned`, message: 'is set by Warden when the task starts (the pinned tool lists); a task file cannot set it' });
  }
  if (tools.mcpPins !== undefined) {
    issues.push({ path: `${prefix}tools.mcpPins`, message: 'is set by Warden when the task starts (the pinned tool lists by digest); a task file cannot set it' });
  }
  const servers = Object.entries(tools.mcp ?? {});
  if (prefix !== '' && servers.length > 0) {
    issues.push({ path: `${prefix}tools.mcp`, message: 'MCP servers are declared by the root task only; sub-agents cannot start or reach their own' });
  }
  for (const [server, config] of servers) {
    const problem = mcpServerNameProblem(server);
    if (problem !== undefined) issues.push({ path: `${prefix}tools.mcp.${server}`, message: `"${server}" is not ${problem.replace(/^an? /, 'a valid ')}` });
    tools.custom.forEach((tool, i) => {
      if (tool.name.startsWith(`${server}.`)) {
        issues.push({ path: `${prefix}tools.custom.${i}.name`, message: `"${tool.name}" is in the namespace of MCP server "${server}"; pick another name` });
      }
    });
    for (const [toolName, override] of Object.entries(config.tools)) {
      if (override.compensate !== undefined && !grants.tools.includes(override.compensate.tool)) {
        issues.push({
          path: `${prefix}tools.mcp.${server}.tools.${toolName}.compensate.tool`,
          message: `compensating tool "${override.compensate.tool}" must be granted (it runs under the task's grant)`,
        });
      }
    }
    if ('command' in config) {
      config.hosts.forEach((host, i) => {
        if (!grants.hosts.includes(host)) {
          issues.push({ path: `${prefix}tools.mcp.${server}.hosts.${i}`, message: `host "${host}" must also be granted (grants.hosts) for the server to reach it` });
        }
      });
      if (config.workspace !== 'none' && task.resources.workspace === undefined && config.cwd !== '.') {
        issues.push({ path: `${prefix}tools.mcp.${server}.cwd`, message: 'a working folder needs resources.workspace' });
      }
    }
  }
  const procRun = tools.builtin.includes('proc.run') && grants.tools.includes('proc.run');
  if (procRun && (grants.commands ?? []).length === 0) {
    issues.push({ path: `${prefix}grants.commands`, message: 'proc.run is granted but grants.commands names no program it may run (e.g. [node, npm])' });
  }
  if (!procRun && (grants.commands ?? []).length > 0) {
    issues.push({ path: `${prefix}grants.commands`, message: 'names programs, but proc.run is not declared under tools.builtin and granted' });
  }
}

/**
 * A sub-agent's tool with the name of one of its parent's tools is the parent's definition, with
 * at most fewer capabilities: anything else (another source, input, effects, annotations,
 * compensation, or a longer timeout or more memory) would let a sub-agent redefine what a name
 * the parent granted does.
 */
function checkSubagentTools(task: TaskReferences, issues: TaskFileIssue[]): void {
  for (const [name, sub] of Object.entries(task.subagents)) {
    if (sub.agent.model.driver === 'mcp-client') {
      issues.push({ path: `subagents.${name}.agent.model.driver`, message: 'a sub-agent cannot be an "mcp-client" agent (only the task warden mcp serve runs is)' });
    }
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
function checkPolicies(task: TaskReferences, issues: TaskFileIssue[]): void {
  const before = issues.length;
  const sentences = [...task.policies.map((sentence, i) => ({ sentence, path: `policies.${i}` }))];
  for (const [name, sub] of Object.entries(task.subagents)) {
    sub.policies.forEach((sentence, i) => sentences.push({ sentence, path: `subagents.${name}.policies.${i}` }));
  }
  for (const { sentence, path } of sentences) {
    try {
      if (isResponseRule(sentence)) parseResponseRule(sentence);
      else parseRule(sentence);
    } catch (error) {
      if (error instanceof WardenError) issues.push({ path, message: error.message });
      else throw error;
    }
  }
  const packLists: { packs: readonly string[]; at: string }[] = [{ packs: task.policyPacks ?? [], at: 'policyPacks' }];
  for (const [name, sub] of Object.entries(task.subagents)) packLists.push({ packs: sub.policyPacks ?? [], at: `subagents.${name}.policyPacks` });
  for (const { packs, at } of packLists) {
    packs.forEach((pack, i) => {
      try {
        resolvePackFolder(packEntryOf(pack).pack);
      } catch (error) {
        if (error instanceof WardenError) issues.push({ path: `${at}.${i}`, message: error.message });
        else throw error;
      }
    });
  }
  // The engines need every sentence and pack to read (problems found before these checks do not matter here).
  if (issues.length > before) return;
  // The engines the task and each sub-agent will run under (a sub-agent's adds to its parent's).
  const engines = [{ packs: effectivePolicyPacks(task), sentences: task.policies, at: 'policies' }];
  for (const [name, sub] of Object.entries(task.subagents)) {
    const packs = effectivePolicyPacks(task);
    engines.push({ packs: [...packs, ...(sub.policyPacks ?? []).filter((p) => !packs.includes(p))], sentences: [...task.policies, ...sub.policies], at: `subagents.${name}.policies` });
  }
  for (const { packs, sentences, at } of engines) {
    try {
      // What building the engine would throw, without building it (a worker builds it).
      checkPolicyRules({ packs, sentences });
      // The packs' response rules too (the sentences were read above).
      loadResponseRules({ packs });
    } catch (error) {
      if (error instanceof WardenError) issues.push({ path: at, message: error.message });
      else throw error;
    }
  }
}

/** Outbound secrets are for hosts the task lists (a secret for a host it cannot reach is a typo). */
function checkOutboundSecrets(task: TaskReferences, issues: TaskFileIssue[]): void {
  const listed = new Set(task.resources.hosts.map((h) => h.trim().toLowerCase()));
  for (const host of Object.keys(task.resources.secrets)) {
    if (!listed.has(secretOriginOf(host).host)) issues.push({ path: `resources.secrets.${host}`, message: `secrets for host "${host}", which is not listed under resources.hosts` });
  }
}

/**
 * A scripted step that names no declared tool but one a letter or two away from a declared or
 * built-in tool (`fs.wirte`) is a typo, refused now rather than denied mid-run. A name far from
 * every tool stays a run-time denial (ERR_TOOL_UNKNOWN): the scripted model also stands in for an
 * injected model that calls what it was not given.
 */
function checkScriptedTools(agent: Task['agent'], tools: Tools, prefix: string, issues: TaskFileIssue[]): void {
  if (agent.model.driver !== 'scripted') return;
  const declared = new Set<string>([...tools.builtin, ...tools.custom.map((t) => t.name)]);
  const servers = Object.keys(tools.mcp ?? {});
  const known = [...new Set([...declared, ...BUILTIN_TOOL_NAMES, ...PROCESS_TOOL_NAMES])];
  agent.model.script.forEach((action, i) => {
    if (!('tool' in action) || declared.has(action.tool) || servers.some((s) => action.tool.startsWith(`${s}.`))) return;
    // Two edits at most (a swapped or dropped letter): `shell.exec` is another tool, not a typo of sql.exec.
    const guess = nearestName(action.tool, known, 2);
    if (guess === undefined || guess === action.tool) return;
    const where = declared.has(guess) ? '' : ` (declare it under ${prefix}tools.builtin)`;
    issues.push({ path: `${prefix}agent.model.script.${i}.tool`, message: `unknown tool "${action.tool}"; did you mean "${guess}"?${where}` });
  });
}

/** Cross-field rules the schema alone cannot express: every grant names something declared. */
/** The scopes that may spawn the sub-agent `name` (the task, or a sub-agent that grants it), each with its path prefix. */
function spawnersOf(task: TaskReferences, name: string): { at: string; tools: Tools; grants: Grants }[] {
  const spawners: { at: string; tools: Tools; grants: Grants }[] = [];
  if (task.grants.subagents.includes(name)) spawners.push({ at: '', tools: task.tools, grants: task.grants });
  for (const [other, sub] of Object.entries(task.subagents)) if (other !== name && sub.grants.subagents.includes(name)) spawners.push({ at: `subagents.${other}.`, tools: sub.tools, grants: sub.grants });
  return spawners;
}

export function checkTaskReferences(task: TaskReferences & { agent?: Task['agent'] }): TaskFileIssue[] {
  const issues: TaskFileIssue[] = [];
  checkOutboundSecrets(task, issues);
  checkPolicies(task, issues);
  checkToolsAndGrants(task.tools, task.grants, task, '', issues);
  if (task.agent !== undefined) checkScriptedTools(task.agent, task.tools, '', issues);
  checkLibraryTimeouts(task.agent, task.tools, '', issues);
  checkSubagentTools(task, issues);
  for (const [name, sub] of Object.entries(task.subagents)) {
    checkToolsAndGrants(sub.tools, sub.grants, task, `subagents.${name}`, issues);
    checkScriptedTools(sub.agent, sub.tools, `subagents.${name}.`, issues);
    checkLibraryTimeouts(sub.agent, sub.tools, `subagents.${name}.`, issues);
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
  // A granted capability with nothing behind it: every call of it is refused (tools/tool-catalog.ts).
  const scanGrants = (scope: Task, at: string) =>
    scope.grants.tools.forEach((name, i) => {
      const tool = resolveTool(scope, name);
      if (tool === undefined) return;
      for (const capability of emptyCapabilityGrants(scope, tool)) {
        const missing = capability === 'http.fetch' ? 'no host that is both in grants.hosts and in resources.hosts' : 'no database that is both in grants.databases and in resources.databases';
        notices.push({ path: `${at}grants.tools.${i}`, message: `"${name}" ${tool.name === capability ? 'is granted' : `is granted with capability "${capability}"`}, but the task grants ${missing}: every ${capability} call it makes will be refused` });
      }
    });
  // A sub-agent granted more than a scope that spawns it: that spawn is refused (identity/delegation.ts).
  for (const [name] of Object.entries(task.subagents)) {
    for (const spawner of spawnersOf(task, name)) {
      for (const widening of grantListWidenings(spawner.grants, task.subagents[name]!.grants)) {
        const index = (task.subagents[name]!.grants[widening.scope as 'tools'] ?? []).indexOf(widening.entry);
        notices.push({ path: `subagents.${name}.grants.${widening.scope}.${index}`, message: `grants "${widening.entry}", which ${spawner.at === '' ? 'the task' : spawner.at.slice(0, -1)} (its parent) does not grant in grants.${widening.scope}: a sub-agent gets no more than its parent, so that spawn will be refused (ERR_DELEGATION_WIDENS)` });
      }
    }
  }
  scan(task.tools, '');
  scanGrants(task, '');
  for (const [name, sub] of Object.entries(task.subagents)) {
    scan(sub.tools, `subagents.${name}.`);
    scanGrants({ ...task, tools: sub.tools, grants: sub.grants }, `subagents.${name}.`);
  }
  return notices;
}

/** Makes the paths of `resources` (workspace, databases, `${file:…}` secrets) absolute, relative to `baseDir`. */
export function resolveResourcePaths<R extends TaskPaths['resources']>(resources: R, baseDir: string): R {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...resources,
    ...(resources.workspace === undefined ? {} : { workspace: abs(resources.workspace) }),
    databases: Object.fromEntries(Object.entries(resources.databases).map(([k, v]) => [k, abs(v)])),
    secrets: Object.fromEntries(
      Object.entries(resources.secrets).map(([host, headers]) => [host, Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, mapFilePaths(value, abs)]))]),
    ),
  };
}

/** Makes resource paths absolute, relative to `baseDir`. */
export function resolveTaskPaths<T extends Pick<Task, 'resources' | 'policyPacks' | 'subagents'>>(task: T, baseDir: string): T {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  // A bare name that is no bundled pack is pinned to the folder found from here (beside the task
  // file, else the working folder): a worker resolving the name from its own working folder could
  // otherwise load another pack than the one this task was checked with.
  const pinned = (name: string) => {
    try {
      return resolvePackFolder(name, baseDir);
    } catch {
      return name; // not found: the task check reports it, naming where it looked
    }
  };
  const pack = (p: string) => (/[/\\]/.test(p) ? abs(p) : isBundledPackName(p) ? p : pinned(p));
  return {
    ...task,
    resources: resolveResourcePaths(task.resources, baseDir),
    // A pack given as a path is found next to the task file, as resources are; bundled packs keep their names.
    ...(task.policyPacks === undefined ? {} : { policyPacks: task.policyPacks.map(pack) }),
    subagents: Object.fromEntries(
      Object.entries(task.subagents).map(([name, sub]) => [name, sub.policyPacks === undefined ? sub : { ...sub, policyPacks: sub.policyPacks.map(pack) }]),
    ),
  } as T;
}

/** Secret files must not be where a tool can read them: outside the workspace. */
function secretFilesInWorkspace(task: TaskReferences): TaskFileIssue[] {
  const workspace = task.resources.workspace;
  if (workspace === undefined) return [];
  const issues: TaskFileIssue[] = [];
  for (const [host, headers] of Object.entries(task.resources.secrets)) {
    for (const [name, value] of Object.entries(headers)) {
      const parsed = parseSecretTemplate(value);
      if ('error' in parsed) continue;
      for (const part of parsed.parts) {
        if (typeof part === 'string' || part.kind !== 'file') continue;
        const inside = relative(workspace, part.path);
        if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
          issues.push({ path: `resources.secrets.${host}.${name}`, message: `the secret file ${part.path} is inside the workspace, where tools can read it` });
        }
      }
    }
  }
  return issues;
}

/**
 * Validates an already-parsed task document. `file` names it in errors; `baseDir` anchors
 * relative resource paths; `locator` (of the file's text) adds where each problem is written.
 */
export function parseTask(document: unknown, file: string, baseDir: string, locator?: TaskFileLocator): Task {
  const { task, issues } = checkTaskDocument(document, baseDir, locator);
  if (task === undefined || issues.length > 0) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issues);
  return task;
}

/**
 * The field errors of a task document and its cross-field problems, together: where fields have
 * errors, the cross-field checks still run when every field they read parses on its own
 * (task/partial-task.ts), so one run reports both. `task` is the resolved task when every field
 * parses (it may still have cross-field issues).
 */
function checkTaskDocument(document: unknown, baseDir: string, locator?: TaskFileLocator): { task?: Task; issues: TaskFileIssue[] } {
  const parsed = TaskSchema.safeParse(document);
  const fieldIssues = parsed.success ? [] : issuesFromZod(parsed.error, locator, document);
  const task = parsed.success ? resolveTaskPaths(parsed.data, baseDir) : undefined;
  const fields = task ?? parsedFields(document, REFERENCE_FIELDS);
  const checked = fields === undefined ? undefined : resolveTaskPaths(fields, baseDir);
  const crossField = checked === undefined ? [] : [...checkTaskReferences(checked), ...secretFilesInWorkspace(checked)];
  return { task, issues: [...fieldIssues, ...crossField.map((issue) => locatedIssue(issue, locator))] };
}

/** A locator of `text` built on first use (only a file with problems needs one). */
function lazyLocator(text: string): TaskFileLocator {
  let built: TaskFileLocator | undefined;
  const get = () => (built ??= taskFileLocator(text));
  return { locate: (path) => get().locate(path), at: (offset) => get().at(offset) };
}

function invalid(file: string, message: string, path = ''): TaskFileError {
  return new TaskFileError('ERR_TASK_FILE_INVALID', file, [{ path, message }]);
}

/** A syntax error as one issue: `file:line:column`, what is wrong, and the offending line under it. */
function syntaxError(file: string, text: string, language: 'YAML' | 'JSON', offset: number, message: string): TaskFileError {
  const where = lineExcerpt(text, offset);
  return new TaskFileError('ERR_TASK_FILE_INVALID', file, [{ path: '', message: `not valid ${language}: ${message}`, ...where }]);
}

function lineExcerpt(text: string, offset: number): { line: number; column: number; excerpt: string } {
  const { line, column } = lineColumnOf(text, offset);
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', start);
  return { line, column, excerpt: text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '') };
}

/** An issue at `offset` of `text`: its line, column and the line itself. */
function invalidAt(file: string, text: string, offset: number, message: string, path = ''): TaskFileError {
  return new TaskFileError('ERR_TASK_FILE_INVALID', file, [{ path, message, ...lineExcerpt(text, offset) }]);
}

/** The YAML 1.2 core schema's tags (YAML 1.2.2 section 10.3): the only ones a task file may write. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

/**
 * The first explicit tag outside the core schema (`!!omap`, `!!set`, `!!binary`, `!!timestamp`,
 * `!local`...), with the offset of the tag and the field path it is at; undefined when none.
 */
function firstNonCoreTag(doc: Yaml.Document, text: string): { tag: string; offset: number; path: string } | undefined {
  let found: { tag: string; offset: number; path: string } | undefined;
  const { isNode, isPair, isScalar, isSeq, visit } = yamlPackage();
  visit(doc, (_key, node, ancestors) => {
    if (!isNode(node) || node.tag === undefined || CORE_TAGS.has(node.tag)) return undefined;
    const start = node.range?.[0] ?? 0;
    // The node's range starts at its value; its tag is the word around the nearest "!" before it.
    let bang = text.lastIndexOf('!', start);
    while (bang > 0 && !/[\s,[\]{}]/.test(text[bang - 1]!)) bang -= 1;
    // The field path: each pair's key, each list item's index.
    const chain = [...ancestors, node];
    const keys = chain.flatMap((parent, i) => {
      if (isPair(parent)) return isScalar(parent.key) ? [String(parent.key.value)] : [];
      return isSeq(parent) && i + 1 < chain.length ? [String(parent.items.indexOf(chain[i + 1] as never))] : [];
    });
    found = { tag: node.tag.replace(/^tag:yaml\.org,2002:/, '!!'), offset: bang >= 0 ? bang : start, path: keys.join('.') };
    return visit.BREAK;
  });
  return found;
}

/**
 * The first key of valid JSON `text` that its object already has (compared decoded, so "a" and
 * "\u0061" are one key): its decoded name, offset and the field path of its object; undefined
 * when every object names each key once. `text` must already have parsed (JSON.parse).
 */
export function firstDuplicateJsonKey(text: string): { key: string; offset: number; path: string } | undefined {
  let i = 0;
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i += 1;
  };
  const string = (): string => {
    const start = i;
    i += 1;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i += 1;
    return JSON.parse(text.slice(start, i)) as string;
  };
  type Found = { key: string; offset: number; path: string } | undefined;
  const value = (path: readonly string[]): Found => {
    space();
    const c = text[i];
    if (c === '{') {
      i += 1;
      const seen = new Set<string>();
      space();
      if (text[i] === '}') return void (i += 1);
      for (;;) {
        space();
        const at = i;
        const key = string();
        if (seen.has(key)) return { key, offset: at, path: path.join('.') };
        seen.add(key);
        space();
        i += 1; // ':'
        const inner = value([...path, key]);
        if (inner !== undefined) return inner;
        space();
        if (text[i++] === '}') return undefined;
      }
    }
    if (c === '[') {
      i += 1;
      space();
      if (text[i] === ']') return void (i += 1);
      for (let index = 0; ; index += 1) {
        const inner = value([...path, String(index)]);
        if (inner !== undefined) return inner;
        space();
        if (text[i++] === ']') return undefined;
      }
    }
    if (c === '"') {
      string();
      return undefined;
    }
    while (i < text.length && !',]} \t\n\r'.includes(text[i]!)) i += 1; // number, true, false, null
    return undefined;
  };
  return value([]);
}

/**
 * Parses YAML (and therefore JSON) text, reporting syntax errors with line and column. Refuses,
 * before any parser sees it, flow nesting deeper than MAX_TASK_NESTING (parsers recurse), and
 * afterwards alias expansion beyond MAX_YAML_ALIASES and any breach of the document limits
 * (task/task-file-limits.ts).
 */
export function parseTaskText(text: string, file: string): unknown {
  const deep = bracketDepthExceeded(text, MAX_TASK_NESTING);
  if (deep >= 0) {
    const at = lineColumnOf(text, deep);
    throw invalid(file, `nested more than ${MAX_TASK_NESTING} levels deep at line ${at.line}, column ${at.column}`);
  }
  let document: unknown;
  if (extname(file).toLowerCase() === '.json') {
    try {
      document = JSON.parse(text) as unknown;
    } catch (error) {
      // Located by the grammar, not by V8's message (which names no position for some errors): json-syntax.ts.
      const problem = jsonSyntaxProblem(text);
      if (problem === undefined) throw syntaxError(file, text, 'JSON', 0, (error as Error).message.replace(/\s+/g, ' '));
      throw syntaxError(file, text, 'JSON', problem.offset, problem.message);
    }
    // JSON.parse keeps the last of a key named twice; YAML refuses it, and so does a JSON task file.
    const duplicate = firstDuplicateJsonKey(text);
    if (duplicate !== undefined) throw invalidAt(file, text, duplicate.offset, `the field "${duplicate.key}" is named twice in one object (a JSON task file names each field once)`, duplicate.path);
  } else {
    const { LineCounter, parseDocument } = yamlPackage();
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
    const first = doc.errors[0];
    if (first !== undefined) {
      // One error: the parser's later ones mostly follow from the first (an unclosed bracket).
      const more = doc.errors.length - 1;
      // An unclosed quote is reported where the file ends: show where it opens.
      const quote = /^Missing closing (["'])quote/.exec(first.message)?.[1];
      const opened = quote === undefined ? -1 : text.lastIndexOf(quote, first.pos[0] - 1);
      const message =
        first.code === 'MULTIPLE_DOCS'
          ? 'a task file holds one document, and this "---" starts a second'
          : first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw syntaxError(file, text, 'YAML', opened >= 0 ? opened : first.pos[0], `${message}${more > 0 ? ` (the parser found ${more} more error(s) after this one, which may follow from it)` : ''}`);
    }
    const tagged = firstNonCoreTag(doc, text);
    if (tagged !== undefined) {
      throw invalidAt(file, text, tagged.offset, `the YAML tag "${tagged.tag}" is not allowed: a task file uses plain YAML (tags other than !!str, !!int, !!float, !!bool, !!null, !!map and !!seq make values Warden would not read as written)`, tagged.path);
    }
    try {
      document = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
    } catch (error) {
      // The yaml package signals an alias bomb with a ReferenceError; anything else is a bug.
      if (!(error instanceof ReferenceError)) throw error;
      throw invalid(file, `YAML aliases expand more than the limit of ${MAX_YAML_ALIASES} allows (${error.message})`);
    }
  }
  const breach = checkDocumentLimits(document);
  if (breach !== undefined) throw invalid(file, breach.message, breach.path);
  return document;
}

/**
 * Reads a task file as UTF-8 text: at most MAX_TASK_FILE_BYTES are read (a larger file is refused
 * from its size, without reading it), bytes that are not UTF-8 are refused naming where they are,
 * and a leading byte-order mark is dropped.
 */
export async function readTaskFileText(file: string): Promise<string> {
  // The reader every command uses for a user's file (../regular-file.ts): the same checks and words.
  try {
    return await readUserFile(file, { what: 'task file', maxBytes: MAX_TASK_FILE_BYTES, dropBom: true });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    const unreadable = error.kind === 'missing' || error.kind === 'not-regular' || error.kind === 'unreadable';
    throw new TaskFileError(unreadable ? 'ERR_TASK_FILE_UNREADABLE' : 'ERR_TASK_FILE_INVALID', file, [{ path: '', message: error.problem }], error.cause);
  }
}

/**
 * Loads, validates and resolves a task file: its syntax, fields and references, every path it
 * names (task/task-path-issues.ts) and whether what it asks for can be honoured (`dataFlow`:
 * task/data-flow-eligibility.ts). Every issue says where in the file it is. Throws
 * TaskFileError (exit code 2 in the CLI).
 */
export async function loadTaskFile(file: string): Promise<Task> {
  const text = await readTaskFileText(file);
  const locator = lazyLocator(text);
  const baseDir = dirname(resolve(file));
  const document = parseTaskText(text, file);
  const { task, issues } = checkTaskDocument(document, baseDir, locator);
  // The paths are checked whatever else is wrong: each one that parses (task/partial-task.ts).
  const written = taskPathsOf(document);
  const paths = task ?? { ...written, resources: resolveResourcePaths(written.resources, baseDir) };
  const more = [...(task === undefined ? [] : [...dataFlowIssues(task), ...toolSourceIssues(task)]), ...(await taskPathIssues(paths, baseDir))];
  issues.push(...more.map((issue) => locatedIssue(issue, locator)));
  // In file order, as a compiler lists them (issues of the whole file, with no line, first; sort is stable).
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (task === undefined || issues.length > 0) throw new TaskFileError('ERR_TASK_FILE_INVALID', file, issues);
  // Where the task came from: kept from its agents like its policy packs (worker/warden-resources.ts).
  return { ...task, source: resolve(file) };
}
