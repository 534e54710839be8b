/** Blast-radius isolation and recovery: overlays, snapshots, rollback, SQL undo, compensation. */
export * from './recovery-paths';
export * from './snapshot-store';
export * from './workspace-overlay';
export * from './workspace-snapshot';
export * from './workspace-rollback';
export * from './sql-undo-journal';
export { brokeredExec, MAX_CAPTURED_ROWS, type BrokeredExecResult, type DryRunResult } from './sql-row-capture';
export * from './compensation';
export * from './run-compensation';
export * from './task-records';
