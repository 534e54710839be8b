/**
 * The contract between `npm run bench` and its sections. A section is a module under
 * `bench/sections/` that exports a `BenchSection`; `bench/sections/index.ts` lists them in run
 * order. See bench/README.md for how to add one.
 */
import type { Summary } from './stats';

/** Units the table knows how to print. Times are always milliseconds in the JSON. */
export type FigureUnit = 'ms' | 'calls/s' | 'MB' | 'KiB' | '%' | 'x';

/** The same thing done without Warden (or without the part measured), in the same run. */
export interface Baseline {
  label: string;
  median: number;
  p99: number;
  n?: number;
}

/** One line of the table: a measured figure, usually next to its baseline. */
export interface Figure {
  /** Stable key, `<section>.<name>` (e.g. `policy.decide.1000`); targets refer to it. */
  id: string;
  label: string;
  unit: FigureUnit;
  median: number;
  p99: number;
  n: number;
  baseline?: Baseline;
  /**
   * Figure median / baseline median (for throughput: figure / baseline, so higher is better).
   * Set by `figure()` when there is a baseline.
   */
  ratio?: number;
  note?: string;
}

export interface SectionResult {
  figures: Figure[];
  /** Said once under the section's table: what was measured, how, what was left out. */
  notes: string[];
  /** Set when the section could not run here; `figures` is then empty. */
  skipped?: string;
}

/** What the runner hands every section. */
export interface BenchContext {
  /** `--quick`: fewer samples, same figures. Sections scale their sample counts with it. */
  quick: boolean;
  /** Progress for humans, on stderr. */
  log(line: string): void;
  /** A folder for the section's files, removed after the run. */
  tmpDir: string;
  /** The repository root. */
  root: string;
  /** The bench's state folder (Temporal server, keys, caches): `<root>/.warden-bench`. */
  stateDir: string;
  /**
   * This run's own task queue (support/bench-task-queue.ts), also in `WARDEN_TASK_QUEUE` of every
   * process the bench spawns: no user's worker on a reused server polls it.
   */
  taskQueue: string;
  /** Results of sections that ran earlier in this run, by section name. */
  results: ReadonlyMap<string, SectionResult>;
  /** Shared, lazily started resources (the Temporal server and workers); closed after the run. */
  shared: Map<string, unknown>;
  /** Called after the last section, in reverse order of registration. */
  onClose(cleanup: () => Promise<void> | void): void;
}

export interface BenchSection {
  /** Name used on the command line (`npm run bench -- <name>`) and in the JSON. */
  name: string;
  /** One line saying what it compares. */
  title: string;
  /** false: runs only when named on the command line (it needs extra services or takes long). Default true. */
  runByDefault?: boolean;
  run(context: BenchContext): Promise<SectionResult>;
}

/** A figure from samples (or a summary), with its ratio to the baseline. */
export function figure(
  id: string,
  label: string,
  measured: Summary,
  options: { unit?: FigureUnit; baseline?: { label: string; summary: Summary }; higherIsBetter?: boolean; note?: string } = {},
): Figure {
  const out: Figure = { id, label, unit: options.unit ?? 'ms', median: measured.median, p99: measured.p99, n: measured.n };
  if (options.baseline !== undefined) {
    const { label: baseLabel, summary } = options.baseline;
    out.baseline = { label: baseLabel, median: summary.median, p99: summary.p99, n: summary.n };
    out.ratio = summary.median === 0 ? Number.POSITIVE_INFINITY : measured.median / summary.median;
  }
  if (options.note !== undefined) out.note = options.note;
  return out;
}

/** A single value (no distribution), e.g. a throughput or an RSS. */
export function single(value: number): Summary {
  return { n: 1, median: value, p99: value, min: value, max: value };
}
