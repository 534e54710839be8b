/**
 * Latency of one trivial sandboxed tool call through SandboxClient (fork + IPC + fresh isolate).
 * Run: node --require tsx/cjs bench/sandbox-call.bench.ts [calls]
 */
import { SandboxClient, type SandboxCall } from '../sandbox/sandbox-client';
import { summarize } from './stats';

const WARMUP_CALLS = 20;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 200);
  const call: SandboxCall = {
    toolName: 'bench.add',
    source: 'return input.a + input.b;',
    input: { a: 1, b: 2 },
    limits: { timeoutMs: 5000, memoryMb: 32, maxOutputBytes: 1024 },
    capabilities: {},
  };
  const client = await SandboxClient.start();
  try {
    for (let i = 0; i < WARMUP_CALLS; i += 1) await client.run(call);
    const timings: number[] = [];
    for (let i = 0; i < calls; i += 1) {
      const started = performance.now();
      const response = await client.run(call);
      timings.push(performance.now() - started);
      if (!response.ok || response.output !== 3) throw new Error(`unexpected response: ${JSON.stringify(response)}`);
    }
    console.log(summarize('sandboxed tool call (SandboxClient -> host process -> fresh isolate)', timings));
  } finally {
    await client.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
