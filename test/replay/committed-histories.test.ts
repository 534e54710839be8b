/**
 * Histories recorded from real runs and committed under test/history-files/ are replayed against
 * the current workflow code: a change that would break determinism for tasks already running
 * in production fails here. Re-record with `WARDEN_RECORD_HISTORIES=1 npx vitest run test/replay`
 * only when a breaking change is intended (and versioned).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { workflowBundle } from '../../worker/workflow-bundle';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { loadTaskFile } from '../../task/load-task-file';
import { followAgentTask } from '../../client/start-agent-task';

// Stored in protobuf's canonical object form (enums by name, 64-bit numbers and bytes as strings).
const { History } = temporal.api.history.v1;
const TO_OBJECT = { longs: String, enums: String, bytes: String } as const;

const HISTORY_DIR = join(REPO_ROOT, 'test', 'history-files');
const RECORD = process.env.WARDEN_RECORD_HISTORIES === '1';

describe('committed histories', () => {
  it('replay against the current workflow code', async () => {
    const files = (await readdir(HISTORY_DIR)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThanOrEqual(3);
    // Both workflow code paths are covered: the original loop and the data flow.
    expect(files.some((f) => f.startsWith('history-flow1-'))).toBe(true);
    expect(files.some((f) => !f.startsWith('history-flow1-'))).toBe(true);
    const histories = (async function* () {
      for (const file of files) {
        const stored = JSON.parse(await readFile(join(HISTORY_DIR, file), 'utf8')) as { workflowId: string; history: object };
        yield { workflowId: stored.workflowId, history: History.fromObject(stored.history) };
      }
    })();
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
    // Bundling the workflow code (webpack) takes most of this; a loaded machine makes it slow, not wrong.
  }, 600_000);

  describe.runIf(RECORD)('recording (WARDEN_RECORD_HISTORIES=1)', () => {
    let env: WardenTestEnv;
    afterAll(async () => env?.close());

    // The data flow is opt-in (`dataFlow: true`) and runs tasks without sub-agents (data-flow-choice.ts).
    it.each(['injected-agent', 'inventory'])('records examples/%s.yaml on the data flow', async (name) => {
      env ??= await startWardenTestEnv();
      const task = { ...(await loadTaskFile(join(REPO_ROOT, 'examples', `${name}.yaml`))), dataFlow: true };
      // Named after the workflow code path they exercise (the data flow, patch warden-data-flow-1):
      // histories of earlier paths stay committed under their own names and keep replaying.
      const result = await followAgentTask(await env.start(task, `history-flow1-${name}`));
      expect(result.status).toBe('completed');
      const ids = [result.workflowId, ...result.children.map((c) => c.workflowId)];
      for (const id of ids) {
        const history = await env.client.workflow.getHandle(id).fetchHistory();
        await writeFile(join(HISTORY_DIR, `${id.replace(/[^a-zA-Z0-9-]+/g, '_')}.json`), `${JSON.stringify({ workflowId: id, history: History.toObject(History.fromObject(history), TO_OBJECT) }, null, 1)}\n`);
      }
    });
  });
});
