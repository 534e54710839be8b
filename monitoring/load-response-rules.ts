/**
 * The response rules of a task: those in its policy packs (each pack after the packs it extends)
 * and those among its own `policies:` sentences. Policy rules in the same places are left to the
 * policy engine.
 */
import { readPacks } from '../policies/engine/load-pack';
import { isResponseRule, parseResponseRule } from '../policies/engine/parse-response-rule';
import type { ResponseRule } from './response-rule';

export interface LoadResponseRulesOptions {
  /** Pack folders or bundled pack names. */
  packs?: readonly string[];
  /** The task's `policies:` sentences (ids `task:<n>`, numbered with the policy rules). */
  sentences?: readonly string[];
}

/** Every response rule of the packs and sentences. Throws PolicyParseError for the first that cannot be read. */
export function loadResponseRules(options: LoadResponseRulesOptions): ResponseRule[] {
  const rules: ResponseRule[] = [];
  for (const s of readPacks(options.packs ?? [])) if (isResponseRule(s.sentence)) rules.push(parseResponseRule(s.sentence, { id: s.id, source: s.source }));
  (options.sentences ?? []).forEach((sentence, i) => {
    if (isResponseRule(sentence)) rules.push(parseResponseRule(sentence, { id: `task:${i + 1}`, source: `task policies[${i}]` }));
  });
  return rules;
}
