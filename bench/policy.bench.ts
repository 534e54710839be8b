/**
 * Policy decision time per call at 10, 100 and 1,000 rules, in one run, on equivalent rule sets:
 *  - engine.decide: Warden's engine (candidate rules from the index, native checks) on requests
 *    built with tool descriptors, as the workflow and the sandbox host build them (validated once);
 *  - cedar-wasm direct: statefulIsAuthorized on the same rules' Cedar policies, preparsed;
 *  - Microsoft's Agent Governance Toolkit (PyPI agent-governance-toolkit-core,
 *    agent_os.policies.PolicyEvaluator) on the same rules written in its YAML/JSON schema, installed
 *    into a local virtual environment under the cache folder on first use; skipped, with the
 *    reason, when it cannot be installed.
 * The rule sets are what an organisation writes at scale: rules about specific tools (deny,
 * approval, argument conditions), amount limits per payment tool, blocked hosts, protected paths.
 *
 * Run: node --require tsx/cjs bench/policy.bench.ts [samples-per-size] [--json]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { policyRequestOf, provenanceIndexOf } from '../policies/build-policy-request';
import { compileRule, cedar, WARDEN_CEDAR_SCHEMA, type CompiledRule } from '../policies/engine/compile-rule';
import { cedarInputs, createPolicyEngine } from '../policies/engine/policy-engine';
import type { PolicyRequest } from '../policies/engine/policy-request';
import { emptyPolicyState, type PolicyState } from '../policies/engine/policy-state';
import { TaskSchema } from '../task/task-schema';
import { BUILTIN_TOOLS } from '../tools/builtin-tools';
import { defineTool } from '../tools/tool-descriptor';
import { percentile } from './stats';

const SIZES = [10, 100, 1000];
const WARMUP = 500;

/** Rule i, in Warden's words and in the Agent Governance Toolkit's schema. */
function ruleAt(i: number): { sentence: string; agt: Record<string, unknown> } {
  switch (i % 6) {
    case 0:
      return { sentence: `deny tool t${i}.run`, agt: { name: `r${i}`, condition: { field: 'tool_name', operator: 'eq', value: `t${i}.run` }, action: 'deny' } };
    case 1:
      return { sentence: `require approval for tool t${i}.send`, agt: { name: `r${i}`, condition: { field: 'tool_name', operator: 'eq', value: `t${i}.send` }, action: 'block' } };
    case 2:
      return { sentence: `deny tool t${i}.pay when argument to is "acct-${i}"`, agt: { name: `r${i}`, condition: { field: 'to', operator: 'eq', value: `acct-${i}` }, action: 'deny' } };
    case 3:
      return { sentence: `never spend more than $${100 + i} with tool p${i}.pay`, agt: { name: `r${i}`, condition: { field: 'amount', operator: 'gt', value: 100 + i }, action: 'deny' } };
    case 4:
      return { sentence: `never fetch from h${i}.example.com`, agt: { name: `r${i}`, condition: { field: 'host', operator: 'eq', value: `h${i}.example.com` }, action: 'deny' } };
    default:
      return { sentence: `never write inside /workspace/area${i}`, agt: { name: `r${i}`, condition: { field: 'path', operator: 'matches', value: `^/workspace/area${i}(/|$)` }, action: 'deny' } };
  }
}

function ruleSet(size: number): { rules: CompiledRule[]; agt: Record<string, unknown>[] } {
  const rules: CompiledRule[] = [];
  const agt: Record<string, unknown>[] = [];
  for (let i = 0; i < size; i += 1) {
    const { sentence, agt: rule } = ruleAt(i);
    rules.push(compileRule(sentence, `bench:${i + 1}`));
    agt.push(rule);
  }
  return { rules, agt };
}

const task = TaskSchema.parse({ user: 'u@example.com', intent: 'pay acct-7 and fetch https://api.example.com/v1', agent: { name: 'assistant', model: { driver: 'scripted', script: [{ final: 'x' }] } } });
const index = provenanceIndexOf({ task, priorOutputs: ['see https://h4.example.com/x'] });
const AGENT = { name: 'assistant', depth: 0, chain: [], id: 'task-1' };
const NOW = '2026-03-02T10:00:00Z';
const pay = (name: string) => defineTool({ name, description: 'pays', executor: { kind: 'mcp', server: 'bank', tool: name }, effects: { payees: ['to'], amounts: [{ arg: 'amount', currency: 'USD' }] }, annotations: { destructiveHint: false } });
const plain = (name: string) => defineTool({ name, description: 'does', executor: { kind: 'mcp', server: 's', tool: name }, annotations: { readOnlyHint: true } });

/** The requests both engines decide, round-robin; the AGT context of each holds the same facts. */
const SHAPES: { request: PolicyRequest; context: Record<string, unknown> }[] = [
  { tool: 't6.run', args: {}, descriptor: plain('t6.run'), ctx: { tool_name: 't6.run' } },
  { tool: 'p3.pay', args: { to: 'acct-7', amount: 250 }, descriptor: pay('p3.pay'), ctx: { tool_name: 'p3.pay', to: 'acct-7', amount: 250 } },
  { tool: 'http.fetch', args: { url: 'https://h4.example.com/x' }, descriptor: BUILTIN_TOOLS['http.fetch'], ctx: { tool_name: 'http.fetch', host: 'h4.example.com' } },
  { tool: 'fs.write', args: { path: 'area5/report.md', content: '# r' }, descriptor: BUILTIN_TOOLS['fs.write'], ctx: { tool_name: 'fs.write', path: '/workspace/area5/report.md' } },
  { tool: 'fs.read', args: { path: 'notes.txt' }, descriptor: BUILTIN_TOOLS['fs.read'], ctx: { tool_name: 'fs.read', path: '/workspace/notes.txt' } },
  { tool: 'crm.lookup', args: { id: 'c-1' }, descriptor: plain('crm.lookup'), ctx: { tool_name: 'crm.lookup', id: 'c-1' } },
  { tool: 't8.pay', args: { to: 'acct-8', amount: 5 }, descriptor: pay('t8.pay'), ctx: { tool_name: 't8.pay', to: 'acct-8', amount: 5 } },
].map(({ tool, args, descriptor, ctx }) => ({ request: policyRequestOf({ tool, args, descriptor, agent: AGENT, now: NOW, index }), context: ctx }));

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

interface Line {
  median: number;
  p99: number;
  n: number;
}

function line(timings: number[]): Line {
  const sorted = [...timings].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

/** The toolkit's evaluator in a local virtual environment (created and installed on first use). */
function agentGovernanceToolkit(samples: number, sets: Record<string, Record<string, unknown>[]>): { results?: Record<string, Line>; skipped?: string } {
  const cache = process.env.WARDEN_CACHE_DIR ?? join(homedir(), '.cache', 'warden');
  const venv = join(cache, 'agt-venv');
  const python = join(venv, 'bin', 'python');
  try {
    if (!existsSync(python)) {
      mkdirSync(cache, { recursive: true });
      execFileSync('python3', ['-m', 'venv', venv], { stdio: 'ignore' });
    }
    try {
      execFileSync(python, ['-c', 'import agent_os.policies.evaluator'], { stdio: 'ignore' });
    } catch {
      execFileSync(python, ['-m', 'pip', 'install', '--quiet', 'agent-governance-toolkit-core'], { stdio: 'ignore', timeout: 600_000 });
    }
  } catch (error) {
    return { skipped: `agent-governance-toolkit-core could not be installed into ${venv}: ${(error as Error).message.split('\n')[0]}` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'warden-agt-'));
  const specFile = join(dir, 'spec.json');
  writeFileSync(specFile, JSON.stringify({ sets, contexts: SHAPES.map((s) => s.context) }));
  try {
    const out = execFileSync(python, [join(__dirname, 'agt_policy_bench.py'), specFile, String(samples)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { results: JSON.parse(out) as Record<string, Line> };
  } catch (error) {
    return { skipped: `the toolkit's evaluator failed: ${(error as Error).message.split('\n')[0]}` };
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const samples = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
  const state: PolicyState = emptyPolicyState();
  const rows: { rules: number; engine: Line; cedar: Line; agt?: Line }[] = [];
  const agtSets: Record<string, Record<string, unknown>[]> = {};
  cedar.preparseSchema('bench', WARDEN_CEDAR_SCHEMA);

  for (const size of SIZES) {
    const { rules, agt } = ruleSet(size);
    agtSets[String(size)] = agt;
    const engine = createPolicyEngine(rules);
    // The engine and Cedar agree on every request of the benchmark.
    for (const { request } of SHAPES) {
      const a = engine.decide(request, state);
      const b = engine.decideWithCedar(request, state);
      if (a.decision !== b.decision || a.matched.length !== b.matched.length) throw new Error(`engine and Cedar disagree on ${request.tool}`);
    }
    const staticPolicies = Object.fromEntries([...rules.flatMap((r) => (r.kind === 'cedar' ? [[r.id, r.cedar]] : [])), ['default', 'permit (principal, action, resource);']]);
    const setId = `bench-direct-${size}`;
    cedar.preparsePolicySet(setId, { staticPolicies });
    const argPointers = [...new Set(rules.flatMap((r) => (r.kind === 'cedar' ? r.argPointers : [])))];
    const inputs = SHAPES.map(({ request }) => {
      const { contexts, ...rest } = cedarInputs(request, argPointers);
      return { ...rest, context: contexts[0] as never, entities: rest.entities as never };
    });
    const engineTimes = time(samples, (i) => engine.decide(SHAPES[i % SHAPES.length]!.request, state));
    const cedarTimes = time(Math.min(samples, 2000), (i) => {
      const input = inputs[i % inputs.length]!;
      cedar.statefulIsAuthorized({ ...input, preparsedSchemaName: 'bench', validateRequest: true, preparsedPolicySetId: setId });
    });
    rows.push({ rules: size, engine: line(engineTimes), cedar: line(cedarTimes) });
  }

  const agt = agentGovernanceToolkit(Math.min(samples, 2000), agtSets);
  for (const row of rows) {
    const result = agt.results?.[String(row.rules)];
    if (result !== undefined) row.agt = result;
  }

  if (json) {
    console.log(JSON.stringify({ policy: rows, ...(agt.skipped === undefined ? {} : { agtSkipped: agt.skipped }) }, null, 2));
    return;
  }
  const us = (v: number) => `${(v * 1000).toFixed(1)} µs`;
  console.log(`policy decision per call (${SHAPES.length} request shapes, median / p99)`);
  console.log('| rules | engine.decide | cedar-wasm direct (preparsed) | Agent Governance Toolkit | engine vs toolkit |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const toolkit = row.agt === undefined ? 'skipped' : `${us(row.agt.median)} / ${us(row.agt.p99)}`;
    const ratio = row.agt === undefined ? '' : `${(row.agt.median / row.engine.median).toFixed(1)}x faster`;
    console.log(`| ${row.rules} | ${us(row.engine.median)} / ${us(row.engine.p99)} | ${us(row.cedar.median)} / ${us(row.cedar.p99)} | ${toolkit} | ${ratio} |`);
  }
  if (agt.skipped !== undefined) console.log(`toolkit skipped: ${agt.skipped}`);
}

main();
