/**
 * Every command that talks to Temporal as a client only (no worker of its own) under a namespace
 * the server does not have (`TEMPORAL_NAMESPACE=typo`), issue 17: `warden run` and the workers
 * already failed `ERR_TEMPORAL_NAMESPACE_NOT_FOUND` (exit 2), but `list`, `status`, `kill`,
 * `approve`... and `mcp serve --no-worker` went on to their first call and failed with the SDK's
 * bare gRPC NOT_FOUND (or, for a call that waits, did not fail at all). The check is now part of
 * every client connection (`connectClient`, temporal/connect.ts) and the exit code of that error
 * is 2 everywhere (`exitCodeOfError`, cli/exit-codes.ts).
 *
 * Real parts: the real CLI entry (`main`), the test Temporal server reached as a cluster
 * (TEMPORAL_ADDRESS) under a namespace it does not have, a real approver key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import { issueApproverKey } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';

const NAMESPACE = 'warden-no-such-namespace';
const dir = mkdtempSync(join(tmpdir(), 'warden-client-namespace-'));
const stateDir = join(dir, 'state');
const keyFile = join(dir, 'approver.json');
const taskFile = join(dir, 'session.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const store = openApproverStore({ stateDir });
  const { keyFile: key } = await issueApproverKey(store, { name: 'namespace-reviewer' });
  store.close();
  writeFileSync(keyFile, JSON.stringify(key), { mode: 0o600 });
  writeFileSync(
    taskFile,
    JSON.stringify({
      user: 'ide-user@example.com',
      intent: 'edit the notes',
      agent: { name: 'editor', model: { driver: 'mcp-client' } },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
      resources: { workspace: dir },
    }),
  );
}, 60_000);

const WORKFLOW = 'warden-task-does-not-matter';

it.each<[string, string[]]>([
  ['list', ['list']],
  ['status', ['status', WORKFLOW]],
  ['logs', ['logs', WORKFLOW]],
  ['cancel', ['cancel', WORKFLOW]],
  ['kill', ['kill', WORKFLOW, '--key', keyFile]],
  ['approvals', ['approvals']],
  ['approve', ['approve', WORKFLOW, 'request-1', '--key', keyFile]],
  ['deny', ['deny', WORKFLOW, 'request-1', '--key', keyFile]],
  ['receipt', ['receipt', WORKFLOW]],
  ['replay', ['replay', WORKFLOW]],
  ['baseline', ['baseline', 'learn']],
  ['policy test', ['policy', 'test', 'foundation', '--against', WORKFLOW]],
  ['mcp serve', ['mcp', 'serve', taskFile, '--no-worker']],
])('warden %s under a namespace the server does not have fails ERR_TEMPORAL_NAMESPACE_NOT_FOUND, exit 2', async (name, argv) => {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: wardenProcessEnv(stateDir, { TEMPORAL_NAMESPACE: NAMESPACE }) };
  const code = await main(argv, io);
  const { address } = testTemporalConfig();
  expect({ code, stderr }).toEqual({
    code: 2,
    stderr: expect.stringMatching(new RegExp(`^warden ${name}: ERR_TEMPORAL_NAMESPACE_NOT_FOUND: the Temporal server at ${address.replace(/[.]/g, '\\.')} has no namespace "${NAMESPACE}"`, 'm')),
  });
  // Nothing of the SDK's own wording reaches the user.
  expect(stderr).not.toMatch(/ServiceError|TransportError|\d NOT_FOUND/);
  expect(stdout).toBe('');
}, 60_000);
