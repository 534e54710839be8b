/**
 * Did this call's tool ever start? One record per call, created once and never changed, in the
 * recovery folder every worker shares (beside the SQL journal and the compensation ledger), so
 * that the answer does not depend on what Temporal recorded of the activity: a schedule-to-start
 * timeout or a cancel with no recorded start reads the same after a call no worker started as
 * after one whose earlier attempt ran.
 *
 * - Before a tool with a compensating tool starts, `started` is recorded (`markCallStarted`),
 *   flushed to disk: for an isolate tool by the sandbox host once it has accepted the call
 *   (credential checked, isolate leased), right before the tool's code runs, so a call the host
 *   refused never reads started; for an MCP tool by its connection once the server's connection
 *   is open and its listing checked, right before `tools/call` is sent; for a program by its
 *   activity, after the credential was checked.
 * - Before a compensating tool runs for a call whose start is in doubt, the compensation records
 *   `never` unless `started` is there (`fenceUnstartedCall`), and runs the tool only for `started`.
 *
 * Invariant: the record is created exclusively (a hard link of a flushed file, which fails when
 * the name exists), so whichever comes first decides, and for good: a compensation that found no
 * start has fenced the call, and an attempt that reaches its tool later (a worker Temporal had
 * given up on) is refused before its tool starts. Either the call started and its compensating
 * tool runs, or it never starts and nothing runs for it.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { RecoveryError, ToolError } from '../errors';
import { fsyncFolder } from './atomic-file';

/** What the record of one call says: its tool started, or its compensation found it had not and fenced it. */
export type CallStart = 'started' | 'never';

/**
 * Records that the call's tool starts now; the record is on disk when this returns. Another
 * attempt's `started` is fine. `signal` (the call's cancel, or its deadline) is the point of no
 * return: aborted before the record is linked into place, none is made and this throws the
 * signal's reason, so a call that never went on to its tool stays fenceable.
 * @throws ToolError ERR_TOOL_CANCELLED (not retryable) when the call's compensation already
 *   fenced it as never started: the tool must not start.
 */
export async function markCallStarted(file: string, callId: string, signal?: AbortSignal): Promise<void> {
  const held = await createOnce(file, 'started', callId, signal);
  if (held === 'never') {
    throw new ToolError('ERR_TOOL_CANCELLED', `call ${callId} was not started: the task's recovery found it never started and fenced it off`, { details: { callId }, retryable: false });
  }
}

/** The call's record, fencing the call off (`never`) when its tool did not start: what holds from now on. */
export function fenceUnstartedCall(file: string, callId: string): Promise<CallStart> {
  return createOnce(file, 'never', callId);
}

/** The call's record, undefined when there is none (without creating one). */
export async function readCallStart(file: string): Promise<CallStart | undefined> {
  try {
    return parse(await fsp.readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Creates `file` holding `state` unless it exists; returns the state the file holds. */
async function createOnce(file: string, state: CallStart, callId: string, signal?: AbortSignal): Promise<CallStart> {
  const existing = await readCallStart(file);
  if (existing !== undefined) return existing;
  signal?.throwIfAborted();
  const folder = dirname(file);
  await fsp.mkdir(folder, { recursive: true, mode: 0o700 });
  // Written and flushed under a name of its own, then linked into place: the record is never torn.
  const temp = join(folder, `.${randomUUID()}.tmp`);
  const handle = await fsp.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ state, callId, at: new Date().toISOString() })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // The point of no return: nothing is linked for a call stopped meanwhile.
    signal?.throwIfAborted();
    await fsp.link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await fsp.rm(temp, { force: true });
  }
  await fsyncFolder(folder);
  const held = await readCallStart(file);
  if (held === undefined) throw new RecoveryError('ERR_SHARED_STORAGE', `the start record ${file} vanished after it was written`, { retryable: true });
  return held;
}

function parse(text: string, file: string): CallStart {
  const state = (JSON.parse(text) as { state?: unknown }).state;
  if (state !== 'started' && state !== 'never') throw new RecoveryError('ERR_SHARED_STORAGE', `the start record ${file} holds no state`);
  return state;
}
