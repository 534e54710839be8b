/**
 * What the custody ledger of a state folder (its SQLite file, or the shared database's ledger
 * when WARDEN_DATABASE_URL is set) says of one task, for `rollback` and `snapshots` when they find
 * no recovery record of it: whether it ran here at all (records of that very workflow id), and
 * whether its tree made calls that may have changed something (any call of a user, MCP or
 * program tool, whatever its outcome; a built-in's call that completed, but for the read-only
 * fs.read, fs.list and sql.query). Only a task that ran and made no such call may be said to have
 * changed nothing: recovery records kept somewhere this command does not look (another worker's
 * state folder, a WARDEN_SHARED_DIR it was not given) must not read as "nothing to undo".
 *
 * Read-only: the ledger is never created or written by asking. A span's body is parsed only when
 * it is an `execute_tool` span of the tree.
 */
import { existsSync } from 'node:fs';
import { GEN_AI_ATTR, GEN_AI_OPERATION, WARDEN_ATTR } from './attributes';
import { ledgerPaths } from './ledger';
import { getBuiltinTool } from '../tools/builtin-tools';
import { LedgerReader } from './ledger-reader';
import { rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { openPostgresDatabase } from '../state/postgres-database';
import { stateStoreConfigOf } from '../state/state-store';

export interface TaskCustodySummary {
  /** Custody records of the workflow itself (the root's, or one sub-agent's `<root>/<child>`); 0: it never ran here. */
  records: number;
  /** Tools of the tree's calls that may have changed something (see the module comment), each once. */
  changingTools: string[];
}

/** What every `execute_tool` span's stored body holds (canonical JSON: no space after the colon). */
const EXECUTE_TOOL_FRAGMENT = `"${GEN_AI_ATTR.operationName}":"${GEN_AI_OPERATION.executeTool}"`;

/** The tool of a stored span body when it is a call that may have changed things; undefined otherwise (or not JSON). */
function changingToolOf(body: string): string | undefined {
  let span: { attributes?: Record<string, unknown> };
  try {
    span = JSON.parse(body) as typeof span;
  } catch {
    return undefined;
  }
  const attributes = span.attributes ?? {};
  if (attributes[GEN_AI_ATTR.operationName] !== GEN_AI_OPERATION.executeTool) return undefined;
  const tool = attributes[GEN_AI_ATTR.toolName];
  const builtin = typeof tool === 'string' && attributes[WARDEN_ATTR.toolExecutor] === 'builtin' ? getBuiltinTool(tool) : undefined;
  // Only Warden's own read-only built-ins are taken at their word: a user tool's or an MCP
  // server's `readOnlyHint` is a claim its author makes, and its capabilities may write.
  if (builtin?.profile.readOnly === true) return undefined;
  // A built-in that failed did nothing (one operation, refused or undone whole). Any other tool's
  // failed call may have committed SQL or written before it failed: it counts, whatever its outcome.
  if (builtin !== undefined && attributes[WARDEN_ATTR.outcome] !== 'ok') return undefined;
  return typeof tool === 'string' ? tool : '(unnamed tool)';
}

/**
 * The custody ledger's summary of `workflowId` (see {@link TaskCustodySummary}); zeros when the
 * ledger has nothing of it or there is no ledger yet.
 * @throws the database's error when the shared database cannot be reached.
 */
export async function taskCustodySummaryOf(stateDir: string, workflowId: string, env: NodeJS.ProcessEnv = process.env): Promise<TaskCustodySummary> {
  const taskId = rootWorkflowIdOf(workflowId);
  const summarize = (records: number, bodies: string[]): TaskCustodySummary => ({ records, changingTools: [...new Set(bodies.map(changingToolOf).filter((t): t is string => t !== undefined))] });
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'sqlite') {
    if (!existsSync(ledgerPaths({ stateDir }).path)) return { records: 0, changingTools: [] };
    const reader = LedgerReader.open({ stateDir });
    try {
      return summarize(reader.countForWorkflow(taskId, workflowId), reader.bodiesContaining(taskId, EXECUTE_TOOL_FRAGMENT));
    } finally {
      reader.close();
    }
  }
  const db = openPostgresDatabase(config.url, { maxConnections: 1, applicationName: 'warden-records' });
  try {
    const row = await db.get<{ n: string | number }>('SELECT count(*) AS n FROM warden_custody_records WHERE task_id = $1 AND workflow_id = $2', [taskId, workflowId]);
    const bodies = await db.all<{ body: string }>('SELECT body FROM warden_custody_records WHERE task_id = $1 AND strpos(body, $2) > 0 ORDER BY seq', [taskId, EXECUTE_TOOL_FRAGMENT]);
    return summarize(Number(row?.n ?? 0), bodies.map((b) => b.body));
  } catch (error) {
    // A database no worker has set up yet (undefined_table): no task has run there.
    if ((error as { code?: unknown }).code === '42P01') return { records: 0, changingTools: [] };
    throw error;
  } finally {
    await db.close();
  }
}
