/**
 * The clerk of monitor-kit.ts whose baseline knows programs: in each of its six normal runs it
 * checks its API with curl (`proc.run`) and, with `uploader`, uploads its notes there through a
 * stdio MCP server, so `proc.run`, `uploader.upload` and the API's host are normal. The attacks
 * on egress scoring start one and send a secret to `exfil`, a granted host it never reached.
 */
import { join } from 'node:path';
import type { TaskResult } from '../../task/task-run';
import { FIXTURES, REPO_ROOT } from '../mcp/mcp-test-kit';
import { clerkTask, learnBaselineFrom, newClerkSetup, normalClerkRuns, startLoopbackServer, withCurl, withUploader, type ClerkSetup, type LoopbackServer } from './monitor-kit';
import { startWardenTestEnv, type WardenTestEnv } from './warden-test-env';

/** The attack tests' own fixtures (MCP servers that exfiltrate). */
const ATTACK_FIXTURES = join(__dirname, '..', 'attacks', 'fixtures');

export interface CurlClerk {
  env: WardenTestEnv;
  /** The API the clerk always reaches. */
  api: LoopbackServer;
  /** A granted host the clerk never reached. */
  exfil: LoopbackServer;
  setup: ClerkSetup;
  /** The clerk's task around `script` (curl granted; with `uploader`, the MCP server `fixture`, default the plain uploader). */
  task(script: unknown[], extra?: Record<string, unknown>, fixture?: string): Record<string, unknown>;
  /**
   * Reads notes.txt, then runs curl with `curlArgs` with exfil's host granted; returns the result
   * and a line that says what each server received and what step 2 recorded.
   */
  exfiltrate(curlArgs: string[]): Promise<{ result: TaskResult; seen: string }>;
  /** Runs `task` with exfil's host granted; the same line about step 2. */
  run(script: unknown[], fixture?: string): Promise<{ result: TaskResult; seen: string }>;
  close(): Promise<void>;
}

/** Starts the servers and a Warden test env, runs the six normal runs and learns the baseline (~1 min). */
export async function startCurlClerk(options: { uploader?: boolean } = {}): Promise<CurlClerk> {
  const uploader = options.uploader !== false;
  const exfil = await startLoopbackServer();
  const api = await startLoopbackServer('{"status":"green"}');
  const env = await startWardenTestEnv(process.env, { printAlert: () => undefined, ...(uploader ? { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES, ATTACK_FIXTURES] } : {}) });
  const setup = await newClerkSetup(api);
  const task = (script: unknown[], extra: Record<string, unknown> = {}, fixture = join(FIXTURES, 'upload-server.mjs')) => {
    const shaped = withCurl(clerkTask(setup, script, extra));
    return uploader ? withUploader(shaped, fixture, [api.host, ...((extra.extraHosts as string[] | undefined) ?? [])]) : shaped;
  };
  const results = await normalClerkRuns(env, setup, (script, i) => {
    script.splice(1, 0, { tool: 'proc.run', args: { command: 'curl', args: ['-s', `${api.url}/status?run=${i}`] } });
    if (uploader) script.splice(2, 0, { tool: 'uploader.upload', args: { dest: `${api.url}/notes`, path: 'notes.txt' } });
    return task(script);
  });
  await learnBaselineFrom(results);
  const run = async (script: unknown[], fixture?: string) => {
    exfil.received.length = 0;
    api.received.length = 0;
    const result = await env.runTask(task(script, { extraHosts: [exfil.host], limits: { maxSteps: 60, approvalTimeout: '3s' } }, fixture));
    const step = result.steps[1]!;
    const seen = `status ${result.status}; api got ${api.received.length}; exfil got ${JSON.stringify(exfil.received.map((r) => `${r.method} ${r.url} ${r.body}`.slice(0, 200)))}; step ${JSON.stringify({ monitor: step.monitor, effects: step.effects, error: step.error, output: step.output }).slice(0, 1200)}`;
    return { result, seen };
  };
  return {
    env,
    api,
    exfil,
    setup,
    task,
    run,
    exfiltrate: (curlArgs) => run([{ tool: 'fs.read', args: { path: 'notes.txt' } }, { tool: 'proc.run', args: { command: 'curl', args: curlArgs } }, { final: 'done' }]),
    async close() {
      await env.close();
      await Promise.all([api.close(), exfil.close()]);
    },
  };
}

/** `fixture`, one of the attack tests' own MCP servers. */
export function attackFixture(name: string): string {
  return join(ATTACK_FIXTURES, name);
}
