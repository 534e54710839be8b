/**
 * `policy`: `engine.decide` at 10, 100 and 1,000 rules generated from the grammar's templates,
 * next to direct cedar-wasm calls (the preparsed-policy-set API the engine uses) on the same
 * requests and Cedar policies, and next to Microsoft's Agent Governance Toolkit policy evaluator
 * (PyPI `agent-governance-toolkit-core`, `agent_os.policies.PolicyEvaluator`) on an equivalent
 * rule set: one rule per generated sentence, each testing the same fact, with the facts Warden
 * measures (row counts, amounts, rates, provenance) handed to it precomputed in the context.
 * Target: at most 0.02 ms (20 µs) median at 1,000 rules, and faster than the comparison engine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compileRule, cedar, WARDEN_CEDAR_SCHEMA, type CompiledRule } from '../../policies/engine/compile-rule';
import { cedarInputs, createPolicyEngine } from '../../policies/engine/policy-engine';
import { parsePolicyRequest, PolicyRequestSchema, type PolicyRequest, type PolicyRequestInput } from '../../policies/engine/policy-request';
import { emptyPolicyState, type PolicyState } from '../../policies/engine/policy-state';
import { RULE_TEMPLATES } from '../../policies/engine/rule-templates';
import { figure, type BenchContext, type BenchSection, type Figure } from '../bench-section';
import { interleaveSync, samplesWithin, summarize } from '../stats';
import { provenanceIndexFigure } from './provenance-index';

const SIZES = [10, 100, 1000];
const AGT_PACKAGE = 'agent-governance-toolkit-core';

interface GeneratedRule {
  sentence: string;
  template: string;
  tools: string;
  n: number;
  amount: number;
  path: string;
  hosts: string;
  startHour: number;
  argName: string;
  text: string;
}

/** The i-th generated rule: template i*7 mod n with its placeholders filled in distinctly. */
export function generatedRule(i: number): GeneratedRule {
  // A stride coprime with the template count mixes Cedar and stateful forms even in small sets.
  const { template } = RULE_TEMPLATES[(i * 7) % RULE_TEMPLATES.length] as { template: string };
  const round = Math.floor(i / RULE_TEMPLATES.length);
  const families = ['file tools', 'network tools', 'sql.exec', 'email tools', 'payment tools'];
  const rule: GeneratedRule = {
    sentence: '',
    template,
    tools: round % 3 === 0 ? (families[round % families.length] as string) : `custom${round}.op${i % 7}`,
    n: 5 + round,
    amount: 100 + round,
    path: round === 0 ? '/workspace' : `/workspace/area${round}`,
    hosts: round === 0 ? 'api.example.com' : `h${round}.example.com`,
    startHour: round % 9,
    argName: `arg${round}`,
    text: `pattern ${round}`,
  };
  rule.sentence = template
    .replace('<tools>', rule.tools)
    .replace('<n>', String(rule.n))
    .replace('$<amount>', `$${rule.amount}`)
    .replace('<path>', rule.path)
    .replace('<hosts>', rule.hosts)
    .replace('<hh:mm>-<hh:mm>', `0${rule.startHour}:00-18:00`)
    .replace('<name>', rule.argName)
    .replace('"<text>"', `"${rule.text}"`);
  return rule;
}

const AGENT = { name: 'assistant', depth: 0, chain: [], id: 'task-1' };
const NOW = '2026-03-02T10:00:00Z';
const REQUESTS: PolicyRequestInput[] = [
  { tool: 'sql.exec', args: { database: 'inventory', sql: 'DELETE FROM items WHERE qty = 0' }, agent: AGENT, effect: { rowsChanged: 42, operation: 'delete' }, now: NOW },
  { tool: 'fs.write', args: { path: 'out/report.md', content: '# Report\n' }, agent: AGENT, now: NOW },
  { tool: 'fs.read', args: { path: 'notes.txt' }, agent: AGENT, now: NOW },
  { tool: 'http.fetch', args: { url: 'https://api.example.com/v1/items' }, agent: AGENT, provenance: { '/url': 'user' }, now: NOW },
  { tool: 'email.send', args: { to: 'attacker@evil.example', body: 'hi' }, agent: AGENT, provenance: { '/to': 'tool-output', '/body': 'literal' }, now: NOW },
  {
    tool: 'pay.send',
    args: { recipient: 'acct_9F3kQ2', amount: 40 },
    agent: { ...AGENT, name: 'buyer', depth: 1, chain: ['assistant'], id: 'task-1/buyer' },
    effect: { amount: 40, currency: 'USD' },
    provenance: { '/recipient': 'user', '/amount': 'user' },
    now: NOW,
  },
  { tool: 'spawn:helper', args: {}, agent: { name: 'helper', depth: 2, chain: ['assistant', 'buyer'] }, now: NOW },
];

/** Untimed decisions before the engine's timed ones (fewer when decisions are slow, within the section's budget). */
const ENGINE_WARMUP = 5000;

/**
 * `samples` timings of `operation(i)`, one call after the other after `warmup` untimed calls: a
 * loop over the request shapes, as the toolkit's evaluator is timed (bench/support/agt-evaluator.py).
 */
function runSync(warmup: number, samples: number, operation: (i: number) => unknown): number[] {
  const out: number[] = [];
  for (let i = 0; i < warmup + samples; i += 1) {
    const started = performance.now();
    operation(i);
    const elapsed = performance.now() - started;
    if (i >= warmup) out.push(elapsed);
  }
  return out;
}

/**
 * Runs `operation(i)` untimed until `calls` calls or `ms` milliseconds of this process's CPU time
 * (not wall time: on a loaded machine the process runs a fraction of the wall clock, and a wall
 * bound cut the warm-up short there); returns the calls made.
 */
function warmUp(calls: number, ms: number, operation: (i: number) => unknown): number {
  const started = process.cpuUsage();
  const cpuMs = () => {
    const used = process.cpuUsage(started);
    return (used.user + used.system) / 1000;
  };
  let i = 0;
  while (i < calls && (i % 64 !== 0 || cpuMs() < ms)) {
    operation(i);
    i += 1;
  }
  return i;
}

/** 50 calls over the last minute, some spending: the history every request is decided against. */
const HISTORY_CALLS = 50;

function historyState(rules: CompiledRule[]): PolicyState {
  const engine = createPolicyEngine(rules.slice(0, 10));
  let state = emptyPolicyState();
  for (let i = 0; i < HISTORY_CALLS; i += 1) {
    const request = REQUESTS[i % REQUESTS.length] as PolicyRequestInput;
    state = engine.recordExecution(state, { ...request, now: new Date(Date.parse(NOW) - (HISTORY_CALLS - i) * 1000).toISOString() }, { status: 'ok' });
  }
  return state;
}

// ---- The equivalent rule set for the Agent Governance Toolkit -------------------------------

const FAMILY_TOOLS: Record<string, string[]> = {
  'file tools': ['fs.read', 'fs.write', 'fs.list'],
  'network tools': ['http.fetch'],
  'email tools': ['email.send'],
  'payment tools': ['pay.send'],
};

interface AgtRule {
  name: string;
  /** Deny 2, audit 1, allow 0: the toolkit stops at the first match by priority, so denials go first (deny overrides, as in Warden and Cedar). */
  priority: number;
  field: string;
  operator: 'eq' | 'ne' | 'gt' | 'lt' | 'in' | 'not_in' | 'matches' | 'contains';
  value: unknown;
  action: 'allow' | 'deny' | 'audit';
}

const PRIORITY = { deny: 2, audit: 1, allow: 0 } as const;

/** One AGT rule testing the fact the Warden rule tests (AGT has no approvals: those audit). */
function agtRuleOf(rule: GeneratedRule, index: number): AgtRule {
  const condition = agtConditionOf(rule, index);
  return { ...condition, priority: PRIORITY[condition.action] };
}

function agtConditionOf(rule: GeneratedRule, index: number): Omit<AgtRule, 'priority'> {
  const tools = FAMILY_TOOLS[rule.tools] ?? [rule.tools];
  const name = `bench:${index + 1}`;
  const escaped = rule.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const t = rule.template;
  const withApproval = t.includes('approval');
  const verdict = withApproval ? 'audit' : 'deny';
  if (t === 'allow <tools>') return { name, field: 'tool_name', operator: 'in', value: tools, action: 'allow' };
  if (t === 'allow only <tools>') return { name, field: 'tool_name', operator: 'not_in', value: tools, action: 'deny' };
  if (t.startsWith('deny <tools> when argument')) return { name, field: `arg_${rule.argName}`, operator: 'contains', value: rule.text, action: 'deny' };
  if (t === 'deny <tools> for sub-agents' || t === 'sub-agents may not use <tools>') return { name, field: 'subagent_tool', operator: 'in', value: tools, action: 'deny' };
  if (t.includes('delete more than')) return { name, field: 'rows_deleted', operator: 'gt', value: rule.n, action: verdict };
  if (t.includes('change more than')) return { name, field: 'rows_changed', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes('across the task and its sub-agents')) return { name, field: 'tree_spend', operator: 'gt', value: rule.amount, action: 'deny' };
  if (t.includes('spend over')) return { name, field: 'amount', operator: 'gt', value: rule.amount, action: 'deny' };
  if (t.includes('files')) return { name, field: 'files_written', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes(' mb ')) return { name, field: 'write_mb', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes('tool calls across the task')) return { name, field: 'task_calls', operator: 'gt', value: rule.n, action: 'deny' };
  if (t === 'never make more than <n> calls per minute') return { name, field: 'calls_per_minute', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes('per minute')) return { name, field: 'tool_calls_per_minute', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes('per hour')) return { name, field: 'tool_calls_per_hour', operator: 'gt', value: rule.n, action: 'deny' };
  if (t === 'never write outside <path>') return { name, field: 'write_path', operator: 'matches', value: `^(?!${escaped}(/|$))`, action: 'deny' };
  if (t === 'never write inside <path>') return { name, field: 'write_path', operator: 'matches', value: `^${escaped}(/|$)`, action: 'deny' };
  if (t === 'never read outside <path>') return { name, field: 'read_path', operator: 'matches', value: `^(?!${escaped}(/|$))`, action: 'deny' };
  if (t.includes('any host except')) return { name, field: 'host', operator: 'not_in', value: [rule.hosts], action: 'deny' };
  if (t === 'never fetch from <hosts>') return { name, field: 'host', operator: 'in', value: [rule.hosts], action: 'deny' };
  if (t.includes('UTC')) return { name, field: 'utc_hour', operator: 'lt', value: rule.startHour, action: 'deny' };
  if (t === 'sub-agents may not spawn sub-agents') return { name, field: 'subagent_spawn', operator: 'eq', value: true, action: 'deny' };
  if (t.includes('levels of sub-agents')) return { name, field: 'agent_depth', operator: 'gt', value: rule.n, action: 'deny' };
  if (t === 'never spawn sub-agents') return { name, field: 'spawn', operator: 'eq', value: true, action: 'deny' };
  if (t.includes('sub-agents across the task')) return { name, field: 'task_spawns', operator: 'gt', value: rule.n, action: 'deny' };
  if (t.includes('send email')) return { name, field: 'email_to_source', operator: 'ne', value: 'user', action: verdict };
  if (t.includes('pay a recipient')) return { name, field: 'recipient_source', operator: 'ne', value: 'user', action: 'deny' };
  if (t.includes('fetch a URL')) return { name, field: 'url_source', operator: 'ne', value: 'user', action: 'deny' };
  if (t.includes('network writes')) return { name, field: 'network_write', operator: 'eq', value: true, action: 'audit' };
  // deny / never use / require approval for <tools>
  return { name, field: 'tool_name', operator: 'in', value: tools, action: withApproval ? 'audit' : 'deny' };
}

/** The facts of a request as AGT's flat context, precomputed (AGT keeps no state). */
function agtContextOf(request: PolicyRequestInput): Record<string, unknown> {
  const args = request.args ?? {};
  const depth = request.agent.depth ?? 0;
  const effect = (request.effect ?? {}) as { rowsChanged?: number; operation?: string; amount?: number };
  const spawn = request.tool.startsWith('spawn:');
  const context: Record<string, unknown> = {
    tool_name: request.tool,
    agent_depth: depth,
    utc_hour: new Date(request.now ?? NOW).getUTCHours(),
    task_calls: HISTORY_CALLS,
    calls_per_minute: HISTORY_CALLS,
    tool_calls_per_minute: Math.ceil(HISTORY_CALLS / REQUESTS.length),
    tool_calls_per_hour: Math.ceil(HISTORY_CALLS / REQUESTS.length),
    task_spawns: Math.ceil(HISTORY_CALLS / REQUESTS.length),
    tree_spend: 40 * Math.ceil(HISTORY_CALLS / REQUESTS.length),
  };
  for (const [key, value] of Object.entries(args)) if (typeof value === 'string' || typeof value === 'number') context[`arg_${key}`] = value;
  if (depth > 0) context.subagent_tool = request.tool;
  if (spawn) {
    context.spawn = true;
    if (depth > 0) context.subagent_spawn = true;
  }
  if (effect.rowsChanged !== undefined) {
    context.rows_changed = effect.rowsChanged;
    if (effect.operation === 'delete') context.rows_deleted = effect.rowsChanged;
  }
  if (effect.amount !== undefined) context.amount = effect.amount;
  if (request.tool === 'fs.write') {
    context.write_path = `/workspace/${String(args.path)}`;
    context.files_written = 1;
    context.write_mb = String(args.content ?? '').length / 1e6;
  }
  if (request.tool === 'fs.read') context.read_path = `/workspace/${String(args.path)}`;
  if (typeof args.url === 'string') {
    context.host = new URL(args.url).hostname;
    context.url_source = request.provenance?.['/url'] ?? 'literal';
  }
  if (request.tool === 'email.send') context.email_to_source = request.provenance?.['/to'] ?? 'literal';
  if (request.tool === 'pay.send') context.recipient_source = request.provenance?.['/recipient'] ?? 'literal';
  if (request.tool === 'http.fetch' && typeof args.method === 'string' && args.method !== 'GET') context.network_write = true;
  return context;
}

interface AgtResult {
  version: string;
  results: { size: number; samples_ms: number[] }[];
}

/** The toolkit's Python (`installed`: this call installed it, the one-time setup), or why it is unavailable. */
export type AgtPython = { python: string; installed: boolean } | { unavailable: string };

/** A virtual environment with the toolkit installed under the bench's state folder, or why not. */
export function agtPython(context: Pick<BenchContext, 'stateDir' | 'log'>): AgtPython {
  const venv = join(context.stateDir, 'agt-venv');
  const python = join(venv, 'bin', 'python');
  const probe = () => spawnSync(python, ['-c', 'import agent_os.policies'], { stdio: 'ignore' }).status === 0;
  if (existsSync(python) && probe()) return { python, installed: false };
  context.log(`policy: installing ${AGT_PACKAGE} into ${venv} (once)`);
  try {
    execFileSync('python3', ['-m', 'venv', venv], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    // Debian's python3 has no venv/ensurepip without the python3-venv package; say so, not just "Command failed".
    const failure = error as { code?: string; stdout?: Buffer; stderr?: Buffer; message: string };
    if (failure.code === 'ENOENT') return { unavailable: 'python3 is not on PATH' };
    const said = `${failure.stdout?.toString() ?? ''}\n${failure.stderr?.toString() ?? ''}`
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const reason = [...said].reverse().find((line) => /ensurepip|No module named/.test(line)) ?? said.at(-1) ?? failure.message;
    return { unavailable: `\`python3 -m venv\` failed (${reason}); on Debian and Ubuntu: apt-get install python3-venv` };
  }
  try {
    execFileSync(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', AGT_PACKAGE], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n').at(-1);
    return { unavailable: `${AGT_PACKAGE} could not be installed (${stderr || (error as Error).message})` };
  }
  return probe() ? { python, installed: true } : { unavailable: `${AGT_PACKAGE} installed but agent_os.policies does not import` };
}

function runAgt(python: string, root: string, rulesBySize: Map<number, GeneratedRule[]>, samples: number, warmup: number): AgtResult {
  const input = {
    sets: [...rulesBySize].map(([size, rules]) => ({ size, rules: rules.map(agtRuleOf) })),
    contexts: REQUESTS.map(agtContextOf),
    samples,
    warmup,
  };
  const output = execFileSync(python, [join(root, 'bench', 'support', 'agt-evaluator.py')], { input: JSON.stringify(input), maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(output.toString()) as AgtResult;
}

export const policySection: BenchSection = {
  name: 'policy',
  title: 'engine.decide at 10/100/1,000 rules vs direct cedar-wasm and the Agent Governance Toolkit evaluator',
  async run(context) {
    const { quick } = context;
    const samples = quick ? 300 : 2000;
    const warmup = quick ? 100 : 500;
    const rulesBySize = new Map(SIZES.map((size) => [size, Array.from({ length: size }, (_, i) => generatedRule(i))]));
    const notes: string[] = [];
    // The runner prepares it before the sections (its install is one-time setup, timed apart).
    const agtEnv = (context.shared.get('agt-python') as AgtPython | undefined) ?? agtPython(context);
    let agt: AgtResult | undefined;
    if ('python' in agtEnv) {
      try {
        agt = runAgt(agtEnv.python, context.root, rulesBySize, samples, warmup);
      } catch (error) {
        notes.push(`Agent Governance Toolkit skipped: ${(error as Error).message.split('\n')[0]}`);
      }
    } else {
      notes.push(`Agent Governance Toolkit skipped: ${agtEnv.unavailable}.`);
    }

    const figures: Figure[] = [];
    const sampleCounts: string[] = [];
    for (const size of SIZES) {
      const generated = rulesBySize.get(size) as GeneratedRule[];
      const rules = generated.map((rule, i) => compileRule(rule.sentence, `bench:${i + 1}`));
      const engine = createPolicyEngine(rules);
      const state = historyState(rules);
      // As the workflow and the sandbox host decide: each request is built and validated once
      // (buildPolicyRequest), then decided; the decision is what is timed.
      const parsed: PolicyRequest[] = REQUESTS.map((r) => parsePolicyRequest(r));
      const cedarRules = rules.filter((r) => r.kind === 'cedar').length;
      const staticPolicies = Object.fromEntries([...rules.flatMap((r) => (r.kind === 'cedar' ? [[r.id, r.cedar]] : [])), ['default', 'permit (principal, action, resource);']]);
      const argPointers = [...new Set(rules.flatMap((r) => (r.kind === 'cedar' ? r.argPointers : [])))];
      const inputs = REQUESTS.map((r) => PolicyRequestSchema.parse(r)).map((r) => {
        const { contexts, ...rest } = cedarInputs(r, argPointers);
        return { ...rest, context: contexts[0] as never, entities: rest.entities as never };
      });
      const setId = `bench-direct-${size}`;
      cedar.preparseSchema('bench', WARDEN_CEDAR_SCHEMA);
      cedar.preparsePolicySet(setId, { staticPolicies });
      // The engine and Cedar agree on the Cedar part, so both decide the same question.
      for (const [i, input] of inputs.entries()) {
        const direct = cedar.statefulIsAuthorized({ ...input, preparsedSchemaName: 'bench', validateRequest: true, preparsedPolicySetId: setId });
        if (direct.type !== 'success') throw new Error(`cedar failed: ${JSON.stringify(direct.errors)}`);
        const decision = engine.decide(parsed[i] as PolicyRequest, state);
        const engineCedarMatched = decision.matched.some((m) => m.kind === 'cedar' && m.effect !== 'allow');
        if ((direct.response.decision === 'deny') !== engineCedarMatched) throw new Error(`engine and Cedar disagree on request ${i} at ${size} rules`);
      }
      const budgetMs = quick ? 1500 : 6000;
      // V8 optimises the engine's many small functions only after some thousand decisions (a worker
      // deciding all day runs in that state); the toolkit's interpreter has no such warm-up. The
      // warm-up is bounded by calls and by CPU time (the section's budget), and the per-call probe
      // below comes after it: a probe of cold calls (slow before optimisation) used to cut the
      // warm-up to a few hundred decisions.
      const engineWarmup = warmUp(ENGINE_WARMUP, budgetMs, (i) => engine.decide(parsed[i % parsed.length] as PolicyRequest, state));
      sampleCounts.push(`engine warm-up ${engineWarmup} at ${size} rules`);
      // Slow configurations get fewer samples, so the section stays within minutes on any engine.
      const probeStarted = performance.now();
      for (let i = 0; i < 20; i += 1) engine.decide(parsed[i % parsed.length] as PolicyRequest, state);
      const perCall = (performance.now() - probeStarted) / 20;
      const sizeSamples = Math.max(100, Math.min(samples, Math.floor(budgetMs / Math.max(perCall, 1e-3) / 2)));
      const sizeWarmup = Math.min(warmup, Math.ceil(sizeSamples / 4));
      sampleCounts.push(`${sizeSamples} at ${size} rules`);
      const decideOne = (i: number) => engine.decide(parsed[i % parsed.length] as PolicyRequest, state);
      const cedarOne = (i: number) => {
        const input = inputs[i % inputs.length] as (typeof inputs)[number];
        cedar.statefulIsAuthorized({ ...input, preparsedSchemaName: 'bench', validateRequest: true, preparsedPolicySetId: setId });
      };
      // The engine is timed as the toolkit is (its ratio's baseline): one loop of decisions over
      // the request shapes. Alternating each decision with a cedar-wasm call (6 ms at 1,000 rules)
      // would time the engine with its data evicted and the toolkit without; that cold case is
      // timed apart below (policy.decide.<n>.cold). Cedar is timed the same way, after the engine.
      const engineTimings = runSync(sizeWarmup, sizeSamples, decideOne);
      // Direct cedar-wasm is about 300 times slower than the engine at 1,000 rules (6 ms a call):
      // the engine's count would take 15 s there. Its own count comes from its own probe, held
      // to the section's budget, and never below 300 (a p99 from fewer would be the maximum).
      const cedarProbeStarted = performance.now();
      for (let i = 0; i < 10; i += 1) cedarOne(i);
      const cedarSamples = samplesWithin(budgetMs / 2, (performance.now() - cedarProbeStarted) / 10, Math.min(300, sizeSamples), sizeSamples);
      const cedarWarmup = Math.min(sizeWarmup, Math.ceil(cedarSamples / 4));
      if (cedarSamples !== sizeSamples) sampleCounts.push(`cedar ${cedarSamples} at ${size} rules`);
      const timings = { engine: engineTimings, cedar: runSync(cedarWarmup, cedarSamples, cedarOne) };
      const agtSamples = agt?.results.find((r) => r.size === size)?.samples_ms;
      const cedarSummary = summarize(timings.cedar);
      const label = `engine.decide, ${size} rules (${cedarRules} Cedar, ${size - cedarRules} stateful)`;
      figures.push(
        figure(`policy.decide.${size}`, label, summarize(timings.engine), {
          baseline:
            agtSamples === undefined
              ? { label: 'cedar-wasm statefulIsAuthorized (direct)', summary: cedarSummary }
              : { label: `Agent Governance Toolkit ${agt?.version} PolicyEvaluator`, summary: summarize(agtSamples) },
        }),
      );
      if (agtSamples !== undefined) {
        figures.push(figure(`policy.cedar.${size}`, `cedar-wasm statefulIsAuthorized (direct), ${size} rules`, cedarSummary));
      }
      if (size === SIZES[SIZES.length - 1]) {
        // Each decision right after a cedar-wasm call over the same rules: caches cold, as between other work in a worker.
        const coldSamples = Math.max(50, Math.min(quick ? 100 : 400, Math.floor(budgetMs / Math.max(cedarSummary.median, 1e-3) / 4)));
        const cold = interleaveSync(Math.ceil(coldSamples / 10), coldSamples, { cedar: cedarOne, engine: decideOne });
        figures.push(figure(`policy.decide.${size}.cold`, `engine.decide, ${size} rules, each right after a cedar-wasm call (cold caches)`, summarize(cold.engine)));
        sampleCounts.push(`${coldSamples} cold at ${size} rules`);
      }
    }
    notes.push(
      `Samples per line (${sampleCounts.join(', ')}; the toolkit ${samples}) over ${REQUESTS.length} request shapes, after a quarter as many warm-up calls (at most ${warmup}); engine, cedar and the toolkit (Python, its own process, measured first) each timed in one loop over the same requests; the cold line times each decision right after a cedar-wasm call over the same rules (interleaved).`,
      'engine.decide is timed on requests validated once (as buildPolicyRequest hands them to it); candidate rules come from the index by tool, effect tag and measured fact, rules asking the same question (equal parsed forms, or equal but for a threshold) are evaluated once per group (rule-groups.ts), each rule by its native check (Cedar is the checked reference, timed apart).',
      'The toolkit gets one single-condition rule per generated sentence (denials at a higher priority than audits and allows: deny overrides, as in Warden) and the facts Warden measures (row counts, amounts, rates, provenance) precomputed in its context; it stops at the first match and keeps no state.',
    );
    figures.push(await provenanceIndexFigure(quick));
    return { figures, notes };
  },
};
