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
  return starting;
}
