/**
 * Every bundled pack decides its own examples: each JSON file under <pack>/ALLOW, DENY and
 * APPROVAL holds a request (and optionally the running state); the folder is the expected decision.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PACKS_DIR } from '../../policies/engine/load-pack';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { PolicyRequestSchema } from '../../policies/engine/policy-request';
import { PolicyStateSchema } from '../../policies/engine/policy-state';

const PACKS = ['foundation', 'enterprise', 'advanced'] as const;
const DECISIONS = { ALLOW: 'allow', DENY: 'deny', APPROVAL: 'approval' } as const;

const ExampleSchema = z.strictObject({
  description: z.string().min(1),
  request: PolicyRequestSchema,
  state: PolicyStateSchema.optional(),
});

describe.each(PACKS)('policy pack %s', (pack) => {
  const engine = loadPolicyEngine({ packs: [join(PACKS_DIR, pack)] });

  describe.each(Object.entries(DECISIONS))('%s/', (folder, expected) => {
    const dir = join(PACKS_DIR, pack, folder);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

    it('has examples', () => {
      expect(files.length).toBeGreaterThanOrEqual(2);
    });

    it.each(files)('%s', (file) => {
      const example = ExampleSchema.parse(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      const decision = engine.decide(example.request, example.state);
      expect(decision.decision, `${pack}/${folder}/${file}: ${JSON.stringify(decision.matched, null, 2)}`).toBe(expected);
      if (expected !== 'allow') {
        expect(decision.matched.some((m) => m.effect === expected)).toBe(true);
        expect(decision.reasons.length).toBeGreaterThan(0);
      }
    });
  });
});
