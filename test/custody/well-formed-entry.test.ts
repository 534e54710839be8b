/**
 * Lone surrogates from outside Warden never leave a call uncommitted in custody. A lone UTF-16
 * surrogate in a model's tool arguments or in a tool's output made canonical JSON (RFC 8785)
 * refuse the value, so the call's `execute_tool` span carried no `warden.tool.args.sha256` or
 * `warden.tool.output.sha256`. Every entry point, on the real Temporal server with real parts
 * (model protocols on loopback, a real MCP server on stdio, a real program, a real HTTP server on
 * loopback), gets the same payload of bad strings: lone high, lone low and a reversed pair, at the
 * start and end of values, inside nested objects and arrays, and in keys. For each: the step
 * completes, the span holds the digest of the value history holds, the value is well-formed with
 * U+FFFD where the surrogates were, and the span that took the value in counts what was mended.
 * An MCP client's arguments through `warden mcp serve` and a claim verifier's verdict are entry
 * points too (the verdict is signed as canonical JSON: unmended, the claim failed to attest).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WARDEN_ATTR } from '../../custody/attributes';
import { canonicalSha256 } from '../../custody/canonical-json';
import { LedgerReader } from '../../custody/ledger-reader';
import type { LedgerRecord } from '../../custody/ledger-record';
import type { StepRecord, TaskResult } from '../../task/task-run';
import { messageReply, startFakeAnthropicServer, toolUse, type FakeAnthropicServer } from '../support/fake-anthropic-server';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { serveTaskOverHttp } from '../../mcp/task-session-server';
import { parseTask } from '../../task/load-task-file';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { FIXTURES, REPO_ROOT } from '../mcp/mcp-test-kit';

const BAD: [string, string][] = [
  ['lone high', '\uD800'],
  ['lone low', '\uDC00'],
  ['reversed pair', '\uDC00\uD800'],
];

/** Each bad string at the start and end of a value, deep inside nested objects, and in a key: 12 strings. */
function badPayload(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, bad] of BAD) {
    out[`${name} start`] = `${bad}start`;
    out[`${name} end`] = `end${bad}`;
    out[`${name} nested`] = { inside: [{ deep: `in${bad}side` }] };
    out[`key ${name}${bad}`] = 'value';
  }
  return out;
}
const BAD_STRINGS = 12;

/** True when every string and key in `value` is well-formed (checked here, independently of the code under test). */
function allWellFormed(value: unknown): boolean {
  if (typeof value === 'string') return (value as string & { isWellFormed(): boolean }).isWellFormed();
  if (Array.isArray(value)) return value.every(allWellFormed);
  if (typeof value === 'object' && value !== null) return Object.entries(value).every(([k, v]) => allWellFormed(k) && allWellFormed(v));
  return true;
}

let env: WardenTestEnv;
let openai: FakeOpenAIServer;
let anthropic: FakeAnthropicServer;
let web: Server;
let webHost: string;
let workspace: string;

beforeAll(async () => {
  openai = await startFakeOpenAIServer();
  anthropic = await startFakeAnthropicServer();
  env = await startWardenTestEnv({ ...process.env, WF_MODEL_KEY: 'sk-wellformed-test-key-000000' }, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
  workspace = await mkdtemp(join(tmpdir(), 'warden-well-formed-'));
  await writeFile(join(workspace, 'notes.txt'), 'notes');
  // Bytes that are no UTF-8 (a surrogate encoded as WTF-8, a lone continuation byte) and a JSON text with "\ud800" escapes.
  web = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(Buffer.concat([Buffer.from('{"a":"\\ud800","b":"'), Buffer.from([0xed, 0xa0, 0x80, 0x80]), Buffer.from('"}')]));
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webHost = `127.0.0.1:${(web.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await env?.close();
  await openai?.close();
  await anthropic?.close();
  await new Promise((resolve) => web?.close(resolve));
});

/** A sandboxed tool that takes any arguments and answers with a fixed, well-formed output. */
const taker = { name: 'take', description: 'Takes any arguments.', input: { type: 'object' }, source: 'return { keys: Object.keys(input).length };' };

interface Entry {
  name: string;
  /** Which value came in from outside: the model's arguments, or the tool's output. */
  enters: 'args' | 'output';
  task(): Record<string, unknown>;
  /** Runs the task another way than `env.runTask` (an MCP client driving `warden mcp serve`). */
  run?: (document: Record<string, unknown>) => Promise<TaskResult>;
  /** Strings the span that took the value in must count as mended (0: none could be ill-formed on the wire). */
  mended: number;
  /** The value entered where no span of the task is open (a client's request): mended, not counted. */
  uncounted?: true;
}

/** An MCP client (the SDK's own, over streamable HTTP on loopback) that makes one call of `take` with `args`, then ends the session. */
async function sessionCall(document: Record<string, unknown>, args: Record<string, unknown>): Promise<TaskResult> {
  const server = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task: parseTask(document, 'well-formed-session.json', workspace) });
  try {
    const transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { authorization: `Bearer ${server.bearerToken}` } } });
    const client = new McpClient({ name: 'wf-ide', version: '1.0.0' });
    await client.connect(transport);
    const called = await client.callTool({ name: 'take', arguments: args }, undefined, { timeout: 120_000 });
    expect(called.isError, JSON.stringify(called.content)).toBeFalsy();
    const workflowId = String((called._meta as Record<string, unknown>)['warden/workflowId']);
    await transport.terminateSession();
    await client.close();
    return (await env.client.workflow.getHandle(workflowId).result()) as TaskResult;
  } finally {
    await server.close();
  }
}

const base = (agentModel: Record<string, unknown>, extra: Record<string, unknown>) => ({
  user: 'wanda@example.com',
  intent: 'take what comes',
  agent: { name: 'taker', model: agentModel },
  resources: { workspace },
  limits: { onDeny: 'continue', toolTimeout: '60s', maxSteps: 5, approvalTimeout: '5s' },
  // No rule pack: what enters is under test, not what the rules make of it.
  policyPacks: [],
  ...extra,
});
const scripted = (action: Record<string, unknown>) => ({ driver: 'scripted', id: 'wf', script: [action, { final: 'done' }] });

const ENTRIES: Entry[] = [
  {
    name: 'scripted driver: the model arguments',
    enters: 'args',
    mended: BAD_STRINGS,
    task: () => base(scripted({ tool: 'take', args: badPayload() }), { tools: { custom: [taker] }, grants: { tools: ['take'] } }),
  },
  {
    name: 'OpenAI driver (chat completions on loopback): the model arguments',
    enters: 'args',
    mended: BAD_STRINGS,
    task: () => {
      openai.enqueue(toolCallsReply([toolCall('take', badPayload(), 'call_wf_1')]), toolCallsReply([toolCall('final_answer', { answer: 'done', claims: [] }, 'call_wf_2')]));
      return base({ driver: 'openai', id: 'gpt-wf', baseUrl: openai.url, apiKeyEnv: 'WF_MODEL_KEY' }, { tools: { custom: [taker] }, grants: { tools: ['take'] } });
    },
  },
  {
    name: 'Anthropic driver (messages on loopback): the model arguments',
    enters: 'args',
    mended: BAD_STRINGS,
    task: () => {
      anthropic.enqueue(messageReply([toolUse('take', badPayload(), 'toolu_wf_1')]), messageReply([toolUse('final_answer', { answer: 'done', claims: [] }, 'toolu_wf_2')]));
      return base({ driver: 'anthropic', id: 'claude-wf', baseUrl: anthropic.url, apiKeyEnv: 'WF_MODEL_KEY' }, { tools: { custom: [taker] }, grants: { tools: ['take'] } });
    },
  },
  {
    name: 'an MCP client through warden mcp serve: its arguments',
    enters: 'args',
    mended: BAD_STRINGS,
    uncounted: true,
    task: () => base({ driver: 'mcp-client' }, { tools: { custom: [taker] }, grants: { tools: ['take'] } }),
    run: (document) => sessionCall(document, badPayload()),
  },
  {
    name: 'sandboxed custom tool: its output',
    enters: 'output',
    mended: BAD_STRINGS,
    // JSON.stringify writes each lone surrogate as a "\ud800" escape: the source is ASCII, the value is not.
    task: () => base(scripted({ tool: 'emit', args: {} }), { tools: { custom: [{ name: 'emit', description: 'Emits.', source: `return ${JSON.stringify(badPayload())};` }] }, grants: { tools: ['emit'] } }),
  },
  {
    name: 'MCP server on stdio: its output',
    enters: 'output',
    // The payload as structured content (12), and its values joined into one text (1).
    mended: BAD_STRINGS + 1,
    task: () =>
      base(scripted({ tool: 'lone.answer', args: {} }), {
        tools: { mcp: { lone: { command: 'node', args: [join(FIXTURES, 'lone-surrogate-server.mjs'), JSON.stringify(badPayload())], workspace: 'none' } } },
        grants: { tools: ['lone.answer'] },
      }),
  },
  {
    name: 'http.fetch of a loopback server: its body',
    enters: 'output',
    mended: 0,
    task: () => base(scripted({ tool: 'http.fetch', args: { url: `http://${webHost}/` } }), { tools: { builtin: ['http.fetch'] }, grants: { tools: ['http.fetch'], hosts: [webHost] }, resources: { workspace, hosts: [webHost] } }),
  },
  {
    name: 'a sandboxed tool that parses a fetched JSON body: its output',
    enters: 'output',
    mended: 1,
    task: () =>
      base(scripted({ tool: 'parse', args: {} }), {
        tools: { builtin: ['http.fetch'], custom: [{ name: 'parse', description: 'Fetches and parses.', capabilities: ['http.fetch'], source: `const r = await warden.http.fetch('http://${webHost}/'); return JSON.parse(r.body);` }] },
        grants: { tools: ['parse', 'http.fetch'], hosts: [webHost] },
        resources: { workspace, hosts: [webHost] },
      }),
  },
  {
    name: 'proc.run: a program writing bytes that are no UTF-8',
    enters: 'output',
    mended: 0,
    task: () => base(scripted({ tool: 'proc.run', args: { command: 'printf', args: ['\\355\\240\\200 \\200 ok'] } }), { tools: { builtin: ['proc.run'] }, grants: { tools: ['proc.run'], commands: ['printf'] } }),
  },
];

function recordsOf(workflowId: string): LedgerRecord[] {
  const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
  try {
    return reader.records(workflowId);
  } finally {
    reader.close();
  }
}
const attributesOf = (r: LedgerRecord) => (r.body as unknown as { name: string; attributes: Record<string, unknown> }).attributes;
const nameOf = (r: LedgerRecord) => (r.body as unknown as { name: string }).name;

describe.each(ENTRIES)('$name', (entry) => {
  it('completes the step, with the digests of its arguments and output in custody', async () => {
    const result: TaskResult = entry.run === undefined ? await env.runTask(entry.task()) : await entry.run(entry.task());
    const step = result.steps[0] as StepRecord;
    expect({ status: result.status, decision: step.decision, executed: step.executed, error: step.error }).toEqual({ status: 'completed', decision: 'allow', executed: true, error: undefined });
    expect(allWellFormed(result)).toBe(true);
    const entered = entry.enters === 'args' ? step.args : step.output;
    if (entry.mended > 0) expect(JSON.stringify(entered)).toContain('\uFFFD');
    let tool: LedgerRecord | undefined;
    await vi.waitFor(
      () => {
        tool = recordsOf(result.workflowId).find((r) => nameOf(r).startsWith('execute_tool ') && attributesOf(r)[WARDEN_ATTR.toolOutputSha256] !== undefined);
        expect(tool).toBeDefined();
      },
      { timeout: 60_000, interval: 200 },
    );
    const attributes = attributesOf(tool!);
    expect(attributes[WARDEN_ATTR.toolArgsSha256]).toBe(canonicalSha256(step.args));
    expect(attributes[WARDEN_ATTR.toolOutputSha256]).toBe(canonicalSha256(step.output));
    if (entry.enters === 'output') {
      expect(attributes[WARDEN_ATTR.toolOutputMended]).toBe(entry.mended === 0 ? undefined : entry.mended);
    } else if (entry.uncounted !== true) {
      const chat = recordsOf(result.workflowId).find((r) => nameOf(r).startsWith('chat ') && attributesOf(r)[WARDEN_ATTR.modelTurnMended] !== undefined);
      expect(chat && attributesOf(chat)[WARDEN_ATTR.modelTurnMended]).toBe(entry.mended);
    }
    // Arguments were well-formed where they entered, before history: nothing left to mend when the tool ran.
    if (entry.enters === 'args') expect(attributes[WARDEN_ATTR.toolArgsMended]).toBeUndefined();
  }, 300_000);
});

it("a claim verifier's verdict holding lone surrogates is well-formed and the claim is attested", async () => {
  const verdict = { holds: true, reason: `checked\uD800`, observed: badPayload() };
  const result = await env.runTask({
    ...base(scripted({ tool: 'take', args: {} }), { tools: { custom: [taker] }, grants: { tools: ['take'] } }),
    agent: { name: 'taker', model: { driver: 'scripted', id: 'wf', script: [{ tool: 'take', args: {} }, { final: 'done', claims: [{ kind: 'custom', verifier: 'odd', params: {} }] }] } },
    // The verifier's source is ASCII; the verdict it returns is not well-formed.
    attestation: { verifiers: { odd: { params: { type: 'object' }, source: `return ${JSON.stringify(verdict)};` } } },
  });
  expect(result.status, result.reason).toBe('completed');
  expect(allWellFormed(result)).toBe(true);
  expect(result.claims?.[0]).toMatchObject({ verdict: 'verified', reason: 'checked\uFFFD' });
}, 300_000);
