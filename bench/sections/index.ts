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
