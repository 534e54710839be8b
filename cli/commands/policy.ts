/** `warden policy compile <file | pack | sentence>`: show what each rule became (Cedar policy or stateful spec). */
import { policyTestCommand } from './policy-test';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { TaskFileError, WardenError } from '../../errors';
import { parseTaskText, readTaskFileText, taskDocumentShapeIssue } from '../../task/load-task-file';
import { compileRule, validateCedarRules, type CompiledRule } from '../../policies/engine/compile-rule';
import { PACKS_DIR, readPacks, readRuleFile, type PackSentence } from '../../policies/engine/load-pack';
import { describeResponseRule, isResponseRule, parseResponseRule } from '../../policies/engine/parse-response-rule';
import type { ResponseRule } from '../../monitoring/response-rule';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { parseCommandArgs } from '../parse-command-args';
import { terminalJson, terminalLines } from '../../terminal-text';

export const POLICY_USAGE = `usage: warden policy test <pack...> --against <workflowId>... [--json]
       warden policy compile <rules-file | pack-folder | task-file | sentence...> [--json]

  compile   read each rule and print what it became: a Cedar policy (stateless rules) or the
            spec Warden's own evaluator runs (rates, running totals, budgets, intent binding).
            A pack folder (or a bundled pack name: foundation, enterprise, advanced) includes the
            packs it @extends; a task file (.yaml, .yml, .json) contributes its policies: list.
            Each quoted argument is one rule; unquoted words together are one rule.
            An unreadable rule prints where reading failed and exits with code 2.
  --json    print the compiled rules as one JSON array`;

/**
 * A task file's policies, read as `warden run` reads the file: the shared reader of user files
 * (readTaskFileText: a FIFO or folder refused, the size limit, UTF-8, a byte-order mark dropped),
 * parseTaskText (a .json file as JSON, a field named twice refused, aliases and document limits
 * held), and a document that is no mapping refused in run's words. Before: a FIFO printed a raw
 * NotRegularFileError with its stack (exit 1), and an empty or binary file said "no rules" (exit 0)
 * where `warden run` refuses it (exit 2).
 * @throws TaskFileError ERR_TASK_FILE_UNREADABLE / ERR_TASK_FILE_INVALID naming the file (line and column).
 */
async function taskFilePolicies(path: string): Promise<PackSentence[]> {
  const document = parseTaskText(await readTaskFileText(path), path);
  const shape = taskDocumentShapeIssue(document);
  if (shape !== undefined) throw new TaskFileError('ERR_TASK_FILE_INVALID', path, [shape]);
  const policies = (document as { policies?: unknown }).policies;
  if (policies === undefined) return [];
  if (!Array.isArray(policies) || !policies.every((p) => typeof p === 'string')) {
    throw new WardenError('ERR_TASK_FILE_INVALID', `${path}: policies must be a list of rule sentences`);
  }
  return policies.map((sentence: string, i) => ({ id: `task:${i + 1}`, sentence, source: `${path} policies[${i}]` }));
}

/** The sentences of one file or folder named on the command line. */
async function sentencesOfPath(path: string): Promise<PackSentence[]> {
  if (statSync(path).isDirectory()) return readPacks([path]);
  const extension = extname(path).toLowerCase();
  if (extension === '.yaml' || extension === '.yml' || extension === '.json') return taskFilePolicies(path);
  const file = readRuleFile(path, basename(path, extension));
  return [...readPacks(file.extends, dirname(path)), ...file.sentences];
}

/** A bare word naming a bundled pack ("foundation"). */
function isBundledPack(word: string): boolean {
  return /^[a-z][a-z0-9_-]*$/.test(word) && existsSync(join(PACKS_DIR, word, 'rules.txt'));
}

/**
 * The sentences named on the command line. Each argument is a rules file, pack folder, task
 * file, bundled pack name, or one quoted sentence; several unquoted words that are none of
 * those (\`warden policy compile never delete files\`) are one sentence.
 */
export async function sentencesOf(positionals: readonly string[]): Promise<PackSentence[]> {
  const isSource = (arg: string) => existsSync(arg) || isBundledPack(arg);
  if (positionals.length > 1 && positionals.every((arg) => !/\s/.test(arg)) && !positionals.every(isSource)) {
    return [{ id: 'cli:1', sentence: positionals.join(' '), source: 'command line' }];
  }
  const sentences: PackSentence[] = [];
  let quoted = 0;
  for (const arg of positionals) {
    if (existsSync(arg)) sentences.push(...(await sentencesOfPath(arg)));
    else if (/\s/.test(arg)) {
      quoted += 1;
      sentences.push({ id: `cli:${quoted}`, sentence: arg.trim(), source: `command line, argument ${positionals.indexOf(arg) + 1}` });
    } else if (arg.includes('/') || arg.endsWith('.txt') || arg.endsWith('.yaml') || arg.endsWith('.yml') || arg.endsWith('.json')) {
      throw new WardenError('ERR_POLICY_PACK_NOT_FOUND', `no such file or folder: ${arg}`);
    } else if (/^[a-z][a-z0-9_-]*$/.test(arg)) {
      // A bare word: a bundled pack name; a one-word sentence is never a rule anyway.
      sentences.push(...readPacks([arg]));
    } else {
      throw new WardenError('ERR_POLICY_UNREADABLE', `"${arg}" is not a file, a pack or a rule; quote each rule as one argument`);
    }
  }
  return sentences;
}

function indent(text: string, by = '    '): string {
  return text
    .split('\n')
    .map((line) => `${by}${line}`)
    .join('\n');
}

function describeResponse(rule: ResponseRule): string {
  return `${rule.id}  ${rule.sentence}\n  ${describeResponseRule(rule)}\n`;
}

function describe(rule: CompiledRule): string {
  const head = `${rule.id}  ${rule.sentence}\n  ${rule.kind} rule (${rule.form}), decides: ${rule.effect}\n  reason: ${rule.reason}\n`;
  if (rule.kind === 'cedar') return `${head}${indent(rule.cedar)}\n`;
  return `${head}${indent(JSON.stringify(rule.spec, null, 2))}\n`;
}

export async function policyCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'test') return policyTestCommand(argv.slice(1), io);
  const args = parseCommandArgs('policy', POLICY_USAGE, argv, io, { json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [action, ...rest] = args.positionals;
  if (action !== 'compile' || rest.length === 0) {
    io.stderr(`warden policy: expected "compile" and a rules file, pack folder, task file or sentence\n${POLICY_USAGE}\n`);
    return EXIT.usage;
  }

  let sentences: PackSentence[];
  try {
    sentences = await sentencesOf(rest);
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden policy: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }

  const rules: CompiledRule[] = [];
  const responses: ResponseRule[] = [];
  const failures: WardenError[] = [];
  for (const s of sentences) {
    try {
      if (isResponseRule(s.sentence)) responses.push(parseResponseRule(s.sentence, { id: s.id, source: s.source }));
      else rules.push(compileRule(s.sentence, s.id, s.source));
    } catch (error) {
      if (!(error instanceof WardenError)) throw error;
      failures.push(error);
    }
  }
  if (failures.length === 0) {
    try {
      validateCedarRules(rules);
    } catch (error) {
      if (!(error instanceof WardenError)) throw error;
      failures.push(error);
    }
  }
  if (failures.length > 0) {
    for (const failure of failures) io.stderr(`${terminalLines(`warden policy: ${failure.code}: ${failure.message}`)}\n\n`);
    io.stderr(`warden policy: ${failures.length} of ${sentences.length} rule(s) could not be compiled; nothing was printed\n`);
    return EXIT.usage;
  }

  // Response rules (what the monitor does on an anomaly) follow the policy rules, marked kind "response".
  const all = [...rules, ...responses.map((r) => ({ kind: 'response' as const, ...r }))];
  if (args.values.json === true) io.stdout(`${terminalJson(all, 2)}\n`);
  else if (all.length === 0) io.stdout('no rules\n');
  else io.stdout([...rules.map(describe), ...responses.map(describeResponse)].map(terminalLines).join('\n'));
  return EXIT.ok;
}
