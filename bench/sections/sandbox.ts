/**
 * `sandbox`: one trivial tool call through SandboxClient (IPC to the sandbox host, a fresh
 * context in a warm isolate, strict JSON result) next to the same function answered over the same
 * IPC by a plain child process. Target: at most 1 ms median.
 */
import { SandboxClient, type SandboxCall } from '../../sandbox/sandbox-client';
import { figure, type BenchSection } from '../bench-section';
import { interleaveWithin, summarize } from '../stats';
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
    // As many interleaved pairs as fit the budget (2,000 on a quiet machine, about 1 ms a pair),
    // never fewer than 500 (300 with --quick).
    const budget = quick ? { budgetMs: 1000, min: 300, max: 300 } : { budgetMs: 5000, min: 500, max: 2000 };
    const client = await SandboxClient.start();
    const bare = await BareIpcHost.start();
    try {
      const { samples: timings, n: samples } = await interleaveWithin(quick ? 50 : 200, budget, {
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
        notes: [`${samples} calls each (as many as fit ${budget.budgetMs / 1000} s, at least ${budget.min}, at most ${budget.max}), interleaved; isolate limits 64 MB / 5 s; no credential gate (the credential section times that).`],
      };
    } finally {
      await client.close();
      await bare.close();
    }
  },
};
