/**
 * `model-turn share`: the guard's added time per step (guarded minus bare median step cycle, from
 * the step section of the same run, or a short step measurement when it did not run) as a share
 * of a model turn, over turns drawn from recorded LLM latencies (bench/data/llm-turn-latency.json,
 * 0.5-5 s, with its source). The direct answer to "can the checks keep up with agents?".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { figure, single, type BenchSection } from '../bench-section';
import { summarize } from '../stats';
import { measureSteps, type StepSamples } from './step';

interface LatencyData {
  percentiles: Record<string, Record<string, number>>;
  range: [number, number];
  sources: { url: string }[];
}

/** The turns described in the data file's `method`, in ms. */
export function drawTurns(data: LatencyData): number[] {
  const [floor, ceiling] = data.range;
  const turns: number[] = [];
  for (const points of Object.values(data.percentiles)) {
    const known = [[0, floor] as [number, number], ...Object.entries(points).map(([p, v]) => [Number(p) / 100, v] as [number, number])].sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < 100; i += 1) {
      const q = (i + 0.5) / 100;
      const upper = known.findIndex(([p]) => p >= q);
      let value: number;
      if (upper === -1) value = (known.at(-1) as [number, number])[1];
      else if (upper === 0) value = known[0]![1];
      else {
        const [q0, v0] = known[upper - 1]!;
        const [q1, v1] = known[upper]!;
        value = Math.exp(Math.log(v0) + ((q - q0) / (q1 - q0)) * (Math.log(v1) - Math.log(v0)));
      }
      turns.push(Math.min(ceiling, Math.max(floor, value)));
    }
  }
  return turns;
}

export const modelTurnShareSection: BenchSection = {
  name: 'model-turn-share',
  title: "the guard's added time per step as a share of a model turn (recorded LLM latencies)",
  async run(context) {
    const data = JSON.parse(readFileSync(join(context.root, 'bench', 'data', 'llm-turn-latency.json'), 'utf8')) as LatencyData;
    let samples = context.shared.get('step-samples') as StepSamples | undefined;
    const notes: string[] = [];
    if (samples === undefined) {
      samples = await measureSteps(context, 3);
      notes.push('The step section did not run: 3 guarded and 3 bare tasks were measured here.');
    }
    // A model reached over the network is never awaited in a local activity: its steps take the queued path.
    const guarded = summarize(samples.queued.flatMap((r) => r.stepCycles)).median;
    const bare = summarize(samples.bare.flatMap((r) => r.stepCycles)).median;
    const added = Math.max(0, guarded - bare);
    const turns = drawTurns(data);
    const shares = turns.map((turn) => (100 * added) / turn);
    notes.push(
      `Added per step: ${guarded.toFixed(1)} - ${bare.toFixed(1)} = ${added.toFixed(1)} ms (median step cycles; guarded: every call an activity on the queue, the path of a task whose model is reached over the network). ${turns.length} turns drawn from ${data.sources.map((s) => s.url).join(', ')}; median turn ${summarize(turns).median.toFixed(0)} ms. The p99 share is at the fastest turns.`,
    );
    return {
      figures: [
        figure('model-turn-share.added', "guard's added time per step", single(added)),
        figure('model-turn-share.share', "added time as a share of a model turn", summarize(shares), { unit: '%' }),
      ],
      notes,
    };
  },
};
