/**
 * The host's retirement after V8 gave one of its isolates up (`retireAfterCatastrophe`,
 * sandbox/sandbox-host.ts), as a table of what it sends and when it aborts: the lost call is named
 * at once (its cause read from isolated-vm's message), the host aborts only once every other call
 * is answered, a call that arrives meanwhile is refused as not run (retryable), and a notice that
 * cannot be written ends the host at once. The real host process and isolates are in
 * test/sandbox/tool-oom-spares-other-calls.test.ts and host-crash-cause-named.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { handleHostMessage, retireAfterCatastrophe } from '../../sandbox/sandbox-host';
import type { IsolatePool } from '../../sandbox/isolate-pool';
import type { SandboxAliveResponse, SandboxNotice, SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { DEFAULT_LIMITS } from './sandbox-test-kit';

const OOM = 'Catastrophic out-of-memory error';

function retiringHost(ids: string[]) {
  const inFlight = new Map<string, unknown>(ids.map((id) => [id, undefined]));
  const sent: (SandboxRunResponse | SandboxNotice)[] = [];
  const aborts: string[] = [];
  const retirement = retireAfterCatastrophe(inFlight, (message) => void sent.push(message), (message) => void aborts.push(message));
  return { inFlight, sent, aborts, retirement };
}

describe('a host V8 gave an isolate up in', () => {
  it('names the lost call at once and aborts only when the other calls are answered', () => {
    const { inFlight, sent, aborts, retirement } = retiringHost(['hog', 'payment']);
    retirement.onCatastrophicError(OOM, 'hog');
    expect({ sent, aborts, reason: retirement.reason() }).toEqual({ sent: [{ type: 'crashed', id: 'hog', cause: 'out-of-memory' }], aborts: [], reason: OOM });
    // The same isolate reported again (isolated-vm's time-out thread): named once.
    retirement.onCatastrophicError('Script failed to terminate', 'hog');
    inFlight.delete('payment');
    retirement.abortIfDone();
    expect({ sent: sent.length, aborts }).toEqual({ sent: 1, aborts: [OOM] });
  });

  it.each([
    ['an out-of-memory', OOM, 'out-of-memory'],
    ['a script that would not terminate', 'Script failed to terminate', 'lost'],
  ])('reads %s as its cause', (_name, message, cause) => {
    const { sent, aborts, retirement } = retiringHost(['call']);
    retirement.onCatastrophicError(message, 'call');
    expect({ sent, aborts }).toEqual({ sent: [{ type: 'crashed', id: 'call', cause }], aborts: [message] });
  });

  it('ends at once when the lost isolate was no call\'s, with nothing else in flight', () => {
    const { sent, aborts, retirement } = retiringHost([]);
    retirement.onCatastrophicError(OOM, undefined);
    expect({ sent, aborts }).toEqual({ sent: [], aborts: [OOM] });
  });

  it('ends at once when the notice cannot be written (the client is gone)', () => {
    const aborts: string[] = [];
    const retirement = retireAfterCatastrophe(new Map([['hog', undefined], ['other', undefined]]), () => {
      throw new Error('EPIPE');
    }, (message) => void aborts.push(message));
    retirement.onCatastrophicError(OOM, 'hog');
    expect(aborts).toEqual([OOM]);
  });

  it('refuses a call that arrives while it retires, as not run and retryable', async () => {
    const { retirement } = retiringHost(['hog', 'payment']);
    retirement.onCatastrophicError(OOM, 'hog');
    const answers: (SandboxRunResponse | SandboxNotice | SandboxAliveResponse)[] = [];
    // No pool is touched: the call is refused before it would lease an isolate.
    const run = { type: 'run', id: 'late', toolName: 't', source: 'return 1', input: null, limits: DEFAULT_LIMITS, capabilities: {} };
    await handleHostMessage(run, (message) => void answers.push(message), { pool: {} as IsolatePool, inFlight: new Map(), retiring: retirement.reason });
    expect(answers).toEqual([
      { type: 'result', id: 'late', ok: false, durationMs: 0, error: { code: 'ERR_SANDBOX_CRASHED', retryable: true, message: expect.stringContaining('did not run and may be run again') } },
    ]);
  });
});
