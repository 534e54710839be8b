/** `warden policy compile <file | pack | sentence>`: show what each rule became (Cedar policy or stateful spec). */
import { policyTestCommand } from './policy-test';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { WardenError } from '../../errors';
import { compileRule, validateCedarRules, type CompiledRule } from '../../policies/engine/compile-rule';
import { readPacks, readRuleFile, type PackSentence } from '../../policies/engine/load-pack';
import { describeResponseRule, isResponseRule, parseResponseRule } from '../../policies/engine/parse-response-rule';
import type { ResponseRule } from '../../monitoring/response-rule';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';

export const POLICY_USAGE = `usage: warden policy test <pack...> --against <workflowId>... [--json]
       warden policy compile <rules-file | pack-folder | task-file | sentence...> [--json]

  compile   read each rule and print what it became: a Cedar policy (stateless rules) or the
            spec Warden's own evaluator runs (rates, running totals, budgets, intent binding).
            A pack folder (or a bundled pack name: foundation, enterprise, advanced) includes the
            packs it @extends; a task file (.yaml, .yml, .json) contributes its policies: list.
            An unreadable rule prints where reading failed and exits with code 2.
  --json    print the compiled rules as one JSON array`;

/** The sentences named on the command line: a pack, a rules file, a task file's policies, or one sentence. */
function sentencesOf(positionals: readonly string[]): PackSentence[] {
  const [first] = positionals;
  if (positionals.length === 1 && first !== undefined && existsSync(first)) {
    if (statSync(first).isDirectory()) return readPacks([first]);
    const extension = extname(first).toLowerCase();
    if (extension === '.yaml' || extension === '.yml' || extension === '.json') {
      const document: unknown = parseYaml(readFileSync(first, 'utf8'));
      const policies = document !== null && typeof document === 'object' ? (document as { policies?: unknown }).policies : undefined;
      if (policies === undefined) return [];
      if (!Array.isArray(policies) || !policies.every((p) => typeof p === 'string')) {
        throw new WardenError('ERR_TASK_FILE_INVALID', `${first}: policies must be a list of rule sentences`);
      }
      return policies.map((sentence: string, i) => ({ id: `task:${i + 1}`, sentence, source: `${first} policies[${i}]` }));
    }
    const file = readRuleFile(first, basename(first, extension));
    return [...readPacks(file.extends, dirname(first)), ...file.sentences];
  }
  if (positionals.length === 1 && first !== undefined && !first.includes(' ') && (first.includes('/') || first.endsWith('.txt'))) {
    throw new WardenError('ERR_POLICY_PACK_NOT_FOUND', `no such file or folder: ${first}`);
  }
  if (positionals.length === 1 && first !== undefined && /^[a-z]+$/.test(first)) {
    // A bare word: a bundled pack name ("foundation"); a one-word sentence is never a rule anyway.
    return readPacks([first]);
  }
  return [{ id: 'cli:1', sentence: positionals.join(' '), source: 'command line' }];
}

function indent(text: string, by = '    '): string {
  return text
    .split('\n')
    .map((line) => `${by}${line}`)
    .join('\n');
}

function describe(rule: CompiledRule): string {
  const head = `${rule.id}  ${rule.sentence}\n  ${rule.kind} rule (${rule.form}), decides: ${rule.effect}\n  reason: ${rule.reason}\n`;
  if (rule.kind === 'cedar') return `${head}${indent(rule.cedar)}\n`;
  return `${head}${indent(JSON.stringify(rule.spec, null, 2))}\n`;
}

function describeResponse(rule: ResponseRule): string {
  return `${rule.id}  ${rule.sentence}\n  ${describeResponseRule(rule)}\n`;
}

export async function policyCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'test') return policyTestCommand(argv.slice(1), io);
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    io.stderr(`warden policy: ${(error as Error).message}\n${POLICY_USAGE}\n`);
    return EXIT.usage;
  }
  const [action, ...rest] = args.positionals;
  if (args.values.help === true) {
    io.stdout(`${POLICY_USAGE}\n`);
    return EXIT.ok;
  }
  if (action !== 'compile' || rest.length === 0) {
    io.stderr(`warden policy: expected "compile" and a rules file, pack folder, task file or sentence\n${POLICY_USAGE}\n`);
    return EXIT.usage;
  }

  let sentences: PackSentence[];
  try {
    sentences = sentencesOf(rest);
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden policy: ${error.code}: ${error.message}\n`);
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
    for (const failure of failures) io.stderr(`warden policy: ${failure.code}: ${failure.message}\n\n`);
    io.stderr(`warden policy: ${failures.length} of ${sentences.length} rule(s) could not be compiled; nothing was printed\n`);
    return EXIT.usage;
  }

  // Response rules (what the monitor does on an anomaly) follow the policy rules, marked kind "response".
  const all = [...rules, ...responses.map((r) => ({ kind: 'response' as const, ...r }))];
  if (args.values.json === true) io.stdout(`${JSON.stringify(all, null, 2)}\n`);
  else if (all.length === 0) io.stdout('no rules\n');
  else io.stdout([...rules.map(describe), ...responses.map(describeResponse)].join('\n'));
  return EXIT.ok;
}
