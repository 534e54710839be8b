/** `npm run bench`: every benchmark, one after another, each in its own process. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const BENCHMARKS = ['sandbox-call.bench.ts', 'credential.bench.ts', 'policy.bench.ts', 'recovery.bench.ts', 'custody.bench.ts', 'task-step.bench.ts', 'shared-workers.bench.ts', 'mcp-and-programs.bench.ts', 'step-history.bench.ts'];

for (const file of BENCHMARKS) {
  execFileSync(process.execPath, ['--require', require.resolve('tsx/cjs'), join(__dirname, file)], { stdio: 'inherit' });
}
