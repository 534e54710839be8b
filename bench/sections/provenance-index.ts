/**
 * Part of the `policy` section: the provenance index a policy check needs, with 1,000 earlier
 * outputs in the task, as the worker keeps it (the task's index extended by the one new output,
 * the user's part kept: policies/engine/incremental-provenance.ts) vs built from scratch from
 * every output (what each check did before). Interleaved; each sample is one check of a task one
 * step longer than the last.
 */
import { hash } from 'node:crypto';
import { untrustedPartOf } from '../../activities/check-policy';
import { ProvenanceIndexCache } from '../../policies/engine/incremental-provenance';
import { buildProvenanceIndex } from '../../policies/engine/provenance';
import { figure, type Figure } from '../bench-section';
import { interleave, summarize } from '../stats';

const INTENT = 'Read the invoices in the inbox, check them against the ledger and pay what is due to DE89 3704 0044 0532 0130 00; mail a summary to bob@example.com.';
const EARLIER = 1000;

function outputOf(step: number): unknown {
  return { status: 200, body: `invoice ${step + 4000} from vendor${step}@example.org: $${(step * 37) % 5000}.00 due, see https://billing.example.org/i/${step}` };
}

export async function provenanceIndexFigure(quick: boolean): Promise<Figure> {
  const samples = quick ? 50 : 200;
  const warmup = quick ? 10 : 30;
  const cache = new ProvenanceIndexCache({ digest: (text) => hash('sha256', text) });
  const outputs = Array.from({ length: EARLIER }, (_, i) => outputOf(i));
  const values = ['alice@example.com', 'billing.example.org'];
  let incrementalSteps = EARLIER;
  let scratchSteps = EARLIER;
  // Both checks see the task grow by one output per sample.
  const listOf = (n: number) => {
    while (outputs.length < n) outputs.push(outputOf(outputs.length));
    return outputs.slice(0, n);
  };
  await cache.toolOutputs('bench', listOf(EARLIER).map((o) => untrustedPartOf(o, undefined)));
  const timings = await interleave(warmup, samples, {
    incremental: async () => {
      incrementalSteps += 1;
      const list = listOf(incrementalSteps);
      const tools = await cache.toolOutputs('bench', list.map((o) => untrustedPartOf(o, undefined)));
      return { user: cache.userValues(INTENT, values), tools: tools.index };
    },
    scratch: () => {
      scratchSteps += 1;
      return buildProvenanceIndex({ intent: INTENT, taskValues: values, toolOutputs: listOf(scratchSteps) });
    },
  });
  return figure('policy.provenance.1000', `provenance index of a check with ${EARLIER}+ earlier outputs, kept per task and extended`, summarize(timings.incremental), {
    baseline: { label: 'built from every output at each check', summary: summarize(timings.scratch) },
  });
}
