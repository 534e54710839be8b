/**
 * `sandbox`: one trivial tool call through SandboxClient (IPC to the sandbox host, a fresh
 * context in a warm isolate, strict JSON result) next to the same function answered over the same
 * IPC by a plain child process. Target: at most 1 ms median.
 */
import { SandboxClient, type SandboxCall } from '../../sandbox/sandbox-client';
import { figure, type BenchSection } from '../bench-section';
import { interleave, summarize } from '../stats';
import { BareIpcHost } from '../support/bare-ipc-host';

const CALL: SandboxCall = {
  toolName: 'bench.add',
  source: 'return input.a + input.b;',
  input: { a: 1, b: 2 },
  limits: { timeoutMs: 5000, memoryMb: 64, maxOutputBytes: 1024 },
  capabilities: {},
};

export const sandboxSection: BenchSection = {
  name: 'sandbox',
  title: 'a trivial tool call in the sandbox vs the same function in a plain child process over IPC',
  async run({ quick }) {
    const samples = quick ? 300 : 2000;
    const client = await SandboxClient.start();
    const bare = await BareIpcHost.start();
    try {
      const timings = await interleave(quick ? 50 : 200, samples, {
        sandbox: async () => {
          const response = await client.run(CALL);
          if (!response.ok || response.output !== 3) throw new Error(`unexpected sandbox response: ${JSON.stringify(response)}`);
        },
        bare: async () => {
          if ((await bare.run(CALL.source, CALL.input)) !== 3) throw new Error('unexpected bare response');
        },
      });
      return {
        figures: [
          figure('sandbox.call', 'sandboxed call (SandboxClient -> host -> fresh context)', summarize(timings.sandbox), {
            baseline: { label: 'plain child process over IPC', summary: summarize(timings.bare) },
          }),
        ],
        notes: [`${samples} calls each, interleaved; isolate limits 64 MB / 5 s; no credential gate (the credential section times that).`],
      };
    } finally {
      await client.close();
      await bare.close();
    }
  },
};
