/**
 * Policy decision latency with 10, 100 and 1,000 rules generated from the grammar's templates,
 * next to direct cedar-wasm calls on the same requests with the same Cedar policies, in one run:
 *  - engine.decide: zod parse, measurement, preparsed Cedar sets, stateful rules, decision;
 *  - cedar isAuthorized: the plain API (parses the policy set on every call);
 *  - cedar statefulIsAuthorized: the preparsed-policy-set API the engine uses.
 * Run: node --require tsx/cjs bench/policy.bench.ts [samples-per-size]
 */
import { compileRule, cedar, WARDEN_CEDAR_SCHEMA, type CompiledRule } from '../policies/engine/compile-rule';
import { cedarInputs, createPolicyEngine } from '../policies/engine/policy-engine';
import { PolicyRequestSchema, type PolicyRequestInput } from '../policies/engine/policy-request';
import { emptyPolicyState, type PolicyState } from '../policies/engine/policy-state';
import { RULE_TEMPLATES } from '../policies/engine/rule-templates';
import { summarize } from './stats';

const SIZES = [10, 100, 1000];
const WARMUP = 500;

/** The i-th generated sentence: template i mod n with its placeholders filled in distinctly. */
function generatedSentence(i: number): string {
  // A stride coprime with the template count mixes Cedar and stateful forms even in small sets.
  const { template } = RULE_TEMPLATES[(i * 7) % RULE_TEMPLATES.length] as { template: string };
  const round = Math.floor(i / RULE_TEMPLATES.length);
  const families = ['file tools', 'network tools', 'sql.exec', 'email tools', 'payment tools'];
  const tools = round % 3 === 0 ? (families[round % families.length] as string) : `custom${round}.op${i % 7}`;
  return template
    .replace('<tools>', tools)
    .replace('<n>', String(5 + round))
    .replace('$<amount>', `$${100 + round}`)
    .replace('<path>', round === 0 ? '/workspace' : `/workspace/area${round}`)
    .replace('<hosts>', round === 0 ? 'api.example.com' : `h${round}.example.com`)
    .replace('<hh:mm>-<hh:mm>', `0${round % 9}:00-18:00`)
    .replace('<name>', `arg${round}`)
    .replace('"<text>"', `"pattern ${round}"`);
}

function ruleSet(size: number): CompiledRule[] {
  return Array.from({ length: size }, (_, i) => compileRule(generatedSentence(i), `bench:${i + 1}`));
}

const AGENT = { name: 'assistant', depth: 0, chain: [], id: 'task-1' };
const NOW = '2026-03-02T10:00:00Z';
const REQUESTS: PolicyRequestInput[] = [
  { tool: 'sql.exec', args: { database: 'inventory', sql: 'DELETE FROM items WHERE qty = 0' }, agent: AGENT, effect: { rowsChanged: 42, operation: 'delete' }, now: NOW },
  { tool: 'fs.write', args: { path: 'out/report.md', content: '# Report\n' }, agent: AGENT, now: NOW },
  { tool: 'fs.read', args: { path: 'notes.txt' }, agent: AGENT, now: NOW },
  { tool: 'http.fetch', args: { url: 'https://api.example.com/v1/items' }, agent: AGENT, provenance: { '/url': 'user' }, now: NOW },
  { tool: 'email.send', args: { to: 'attacker@evil.example', body: 'hi' }, agent: AGENT, provenance: { '/to': 'tool-output', '/body': 'literal' }, now: NOW },
  { tool: 'pay.send', args: { recipient: 'acct_9F3kQ2', amount: 40 }, agent: { ...AGENT, name: 'buyer', depth: 1, chain: ['assistant'], id: 'task-1/buyer' }, effect: { amount: 40, currency: 'USD' }, provenance: { '/recipient': 'user', '/amount': 'user' }, now: NOW },
  { tool: 'spawn:helper', args: {}, agent: { name: 'helper', depth: 2, chain: ['assistant', 'buyer'] }, now: NOW },
];

/** A state with some history: 50 calls over the last minute, some spending. */
function historyState(size: number): PolicyState {
  const engine = createPolicyEngine(ruleSet(Math.min(size, 10)));
  let state = emptyPolicyState();
  for (let i = 0; i < 50; i += 1) {
    const request = REQUESTS[i % REQUESTS.length] as PolicyRequestInput;
    state = engine.recordExecution(state, { ...request, now: new Date(Date.parse(NOW) - (50 - i) * 1000).toISOString() }, { status: 'ok' });
  }
  return state;
}

function time(samples: number, run: (i: number) => void): number[] {
  for (let i = 0; i < WARMUP; i += 1) run(i);
  const timings: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const started = performance.now();
    run(i);
    timings.push(performance.now() - started);
  }
  return timings;
}

function main(): void {
  const samples = Number(process.argv[2] ?? 2000);
  console.log(`policy decision latency (${REQUESTS.length} request shapes, ${samples} samples per line, after ${WARMUP} warm-up calls)`);
  for (const size of SIZES) {
    const rules = ruleSet(size);
    const engine = createPolicyEngine(rules);
    const state = historyState(size);
    const cedarRules = rules.filter((r) => r.kind === 'cedar').length;
    const staticPolicies = Object.fromEntries([...rules.flatMap((r) => (r.kind === 'cedar' ? [[r.id, r.cedar]] : [])), ['default', 'permit (principal, action, resource);']]);
    const parsed = REQUESTS.map((r) => PolicyRequestSchema.parse(r));
    const argPointers = [...new Set(rules.flatMap((r) => (r.kind === 'cedar' ? r.argPointers : [])))];
    const inputs = parsed.map((r) => {
      const { contexts, ...rest } = cedarInputs(r, argPointers);
      return { ...rest, context: contexts[0] as never, entities: rest.entities as never };
    });
    const setId = `bench-direct-${size}`;
    cedar.preparseSchema('bench', WARDEN_CEDAR_SCHEMA);
    cedar.preparsePolicySet(setId, { staticPolicies });

    // Same answers from the engine and from Cedar directly on the Cedar part.
    for (const [i, input] of inputs.entries()) {
      const direct = cedar.isAuthorized({ ...input, schema: WARDEN_CEDAR_SCHEMA, validateRequest: true, policies: { staticPolicies } });
      if (direct.type !== 'success') throw new Error(`cedar failed: ${JSON.stringify(direct.errors)}`);
      const decision = engine.decide(REQUESTS[i] as PolicyRequestInput, state);
      const cedarDenied = direct.response.decision === 'deny';
      const engineCedarMatched = decision.matched.some((m) => m.kind === 'cedar' && m.effect !== 'allow');
      if (cedarDenied !== engineCedarMatched) throw new Error(`engine and Cedar disagree on request ${i}`);
    }

    const label = `${String(size).padStart(4)} rules (${cedarRules} Cedar, ${size - cedarRules} stateful)`;
    console.log(summarize(`${label}: engine.decide`, time(samples, (i) => engine.decide(REQUESTS[i % REQUESTS.length] as PolicyRequestInput, state))));
    console.log(
      summarize(
        `${label}: cedar isAuthorized (direct)`,
        time(Math.min(samples, size >= 1000 ? 300 : samples), (i) => {
          const input = inputs[i % inputs.length] as (typeof inputs)[number];
          cedar.isAuthorized({ ...input, schema: WARDEN_CEDAR_SCHEMA, validateRequest: true, policies: { staticPolicies } });
        }),
      ),
    );
    console.log(
      summarize(
        `${label}: cedar statefulIsAuthorized (direct, preparsed)`,
        time(samples, (i) => {
          const input = inputs[i % inputs.length] as (typeof inputs)[number];
          cedar.statefulIsAuthorized({ ...input, preparsedSchemaName: 'bench', validateRequest: true, preparsedPolicySetId: setId });
        }),
      ),
    );
  }
}

main();
