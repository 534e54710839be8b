/**
 * Every bench section, in the order `npm run bench` runs them. Add a section by writing a module
 * under bench/sections/ that exports a `BenchSection` and listing it here (see bench/README.md).
 */
import type { BenchSection } from '../bench-section';
import { attestSection } from './attest';
import { credentialSection } from './credential';
import { historySection } from './history';
import { custodySection } from './custody';
import { mcpSection } from './mcp-and-programs';
import { monitorSection } from './monitor';
import { modelTurnShareSection } from './model-turn-share';
import { policySection } from './policy';
import { sandboxSection } from './sandbox';
import { sqlSection } from './sql';
import { startupSection } from './startup';
import { stepSection } from './step';
import { throughputSection } from './throughput';
import { workersSection } from './workers';

/** Issue 17's sections, in run order: what `npm run bench` runs with no section named. */
export const ISSUE_17_SECTIONS = ['step', 'throughput', 'policy', 'sandbox', 'credential', 'custody', 'sql', 'startup', 'model-turn-share'] as const;

export const SECTIONS: readonly BenchSection[] = [
  stepSection,
  throughputSection,
  historySection,
  policySection,
  sandboxSection,
  credentialSection,
  custodySection,
  sqlSection,
  startupSection,
  modelTurnShareSection,
  workersSection,
  mcpSection,
  monitorSection,
  attestSection,
];

/**
 * The sections `npm run bench` runs when none is named: every section not marked
 * `runByDefault: false`, in list order. The others (history, monitor, attest: other issues'
 * figures; workers, mcp: extra services) run when named.
 */
export function defaultSections(sections: readonly BenchSection[] = SECTIONS): BenchSection[] {
  return sections.filter((s) => s.runByDefault !== false);
}
