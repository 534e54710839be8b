/** One guarded and one bare worker process shared by the step, throughput and model-turn sections. */
import type { BenchContext } from '../bench-section';
import { startBenchWorker, type BenchWorker } from './temporal-bench';

export interface WorkerPair {
  guarded: BenchWorker;
  bare: BenchWorker;
}

export function benchWorkers(context: BenchContext): Promise<WorkerPair> {
  const existing = context.shared.get('workers') as Promise<WorkerPair> | undefined;
  if (existing !== undefined) return existing;
  const starting = (async () => {
    context.log('starting a guarded and a bare worker');
    const guarded = await startBenchWorker(context, 'guarded');
    const bare = await startBenchWorker(context, 'bare');
    return { guarded, bare };
  })();
  context.shared.set('workers', starting);
  // A pair that failed to start (a sandbox host slow to boot on a loaded machine) is not kept:
  // the next section that needs workers starts them again instead of failing at once.
  starting.catch(() => {
    if (context.shared.get('workers') === starting) context.shared.delete('workers');
  });
  return starting;
}
