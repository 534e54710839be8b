/**
 * Entry point of the sandbox host: a child process of the worker that runs tool calls in
 * isolates, so a V8 crash or an out-of-memory in one cannot take the worker down. The host keeps
 * its isolates warm (isolate-pool.ts): each call gets a new context in an idle isolate.
 *
 * Invariant: the host acts only on messages that validate against SandboxRunRequestSchema (or
 * SandboxCancelRequestSchema, which stops a call it is handling), and answers every run message
 * it receives (a malformed one gets an error reply, never a crash). It
 * starts serving only when it is the main module of a process with an IPC channel, so importing
 * this file (e.g. from a test runner that itself uses IPC) does nothing.
 */
// First: the modules below compile with the forking process's code cache.
import './host-code-cache';
import { SANDBOX_DATABASE_URL_ENV, SANDBOX_IDENTITY_DIR_ENV, SANDBOX_JWKS_FILE_ENV, SANDBOX_NOTICE_FD, SANDBOX_NOTICE_FD_ENV, SANDBOX_RULES_UNKNOWN, SandboxCancelRequestSchema, SandboxPingRequestSchema, SandboxRunRequestSchema, type PolicyGateSpec, type SandboxAliveResponse, type SandboxNotice, type SandboxRunResponse } from './sandbox-messages';
import { withHeldRules } from './policy-gate';
import { warmPolicyEngine } from '../policies/engine/policy-engine';
import { abortHostProcess, runInIsolate } from './run-in-isolate';
import { IsolatePool } from './isolate-pool';
import { closeSharedSqlProcessPool, sharedSqlProcessPool } from './capabilities/sql-process-pool';
import { createCredentialGate, type CredentialGate, type CredentialGateOptions } from './credential-gate';
import { isErrorCode, type ErrorCode } from '../errors';
import { cutText } from '../cut-text';
import { writeAllSync } from './write-all-sync';

type Send = (message: SandboxRunResponse | SandboxNotice | SandboxAliveResponse) => void;

export interface HostServices {
  /** Warm isolates the calls run in. */
  pool: IsolatePool;
  /** When present, no call runs without a valid per-call credential. */
  gate?: CredentialGate;
  /** The calls being handled, by id: a `cancel` message aborts one (absent: calls cannot be cancelled). */
  inFlight?: Map<string, AbortController>;
  /** With `inFlight`: when (performance.now(), ms) each call still in flight was told to stop (timed out or cancelled). */
  stopOrdered?: Map<string, number>;
  /** Why the host takes no more calls (it is retiring after a catastrophe), or undefined while it serves. */
  retiring?: () => string | undefined;
}

/**
 * Handles one raw IPC message: a `run` is validated, run and answered through `send`; a `cancel`
 * aborts the call of that id still being handled (its answer, ERR_TOOL_CANCELLED, is sent once
 * the isolate is disposed and its capability requests aborted) and gets no reply of its own; a
 * `ping` is answered at once with how that call stands (SandboxAliveResponse).
 */
export async function handleHostMessage(raw: unknown, send: Send, services: HostServices): Promise<void> {
  // Only a message typed `cancel` can pass the cancel schema: a `run` is not parsed against it
  // (a failed zod parse builds its issues, about 6 µs per call; issue 17).
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  if (type === 'cancel') {
    const cancel = SandboxCancelRequestSchema.safeParse(raw);
    if (cancel.success) {
      const controller = services.inFlight?.get(cancel.data.id);
      if (controller !== undefined) markStopOrdered(services, cancel.data.id);
      controller?.abort();
      return;
    }
  }
  if (type === 'ping') {
    const ping = SandboxPingRequestSchema.safeParse(raw);
    if (ping.success) {
      send(aliveAnswer(ping.data.id, services));
      return;
    }
  }
  const id = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : undefined;
  const retiring = services.retiring?.();
  if (retiring !== undefined) {
    // Sent before the client read the crashed notice: nothing of it ran, so it may be run again (on the replacement host).
    send({ type: 'result', id: id ?? '', ok: false, error: { code: 'ERR_SANDBOX_CRASHED', message: `the sandbox host is retiring (${retiring}); the call did not run and may be run again`, retryable: true }, durationMs: 0 });
    return;
  }
  // Ids are the client's, unique per host; a second call of a live id is not this host's business to track.
  const controller = id === undefined || services.inFlight === undefined || services.inFlight.has(id) ? undefined : new AbortController();
  if (controller !== undefined) services.inFlight!.set(id!, controller);
  const stopOrdered = controller === undefined || services.stopOrdered === undefined ? undefined : () => markStopOrdered(services, id!);
  try {
    await handleRun(raw, send, services, controller?.signal, stopOrdered);
  } finally {
    if (controller !== undefined && services.inFlight!.get(id!) === controller) {
      services.inFlight!.delete(id!);
      services.stopOrdered?.delete(id!);
    }
  }
}

/** Notes that the call `id` in flight was told to stop (its first such order counts: a ping reports the time since). */
function markStopOrdered({ stopOrdered }: HostServices, id: string): void {
  if (stopOrdered !== undefined && !stopOrdered.has(id)) stopOrdered.set(id, performance.now());
}

/** How the call `id` stands, for a client checking that this host is alive (sandbox-client.ts, "liveness"). */
function aliveAnswer(id: string, { inFlight, stopOrdered }: HostServices): SandboxAliveResponse {
  if (inFlight?.has(id) !== true) return { type: 'alive', id, call: 'absent' };
  const since = stopOrdered?.get(id);
  return since === undefined ? { type: 'alive', id, call: 'running' } : { type: 'alive', id, call: 'stopping', stoppingForMs: Math.max(0, Math.round(performance.now() - since)) };
}

async function handleRun(raw: unknown, send: Send, { pool, gate }: HostServices, cancelled: AbortSignal | undefined, stopOrdered: (() => void) | undefined): Promise<void> {
  const parsed = SandboxRunRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const id = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : '';
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    send({
      type: 'result',
      id,
      ok: false,
      error: { code: 'ERR_TOOL_INPUT_INVALID', message: cutText(`malformed sandbox request: ${where}`, 2000) },
      durationMs: 0,
    });
    return;
  }
  // Before the credential is checked (and its jti used): the client sends this call again, rules included.
  let request = parsed.data;
  if (request.policy !== undefined) {
    // Rules that build no engine fail the call where they always did (runInIsolate's gate).
    const policy = heldRulesOf(request.policy);
    if (policy === undefined) {
      send({ type: 'result', id: request.id, ok: false, error: { code: SANDBOX_RULES_UNKNOWN, message: `this sandbox host holds no rules for key ${request.policy.rulesKey}` }, durationMs: 0 });
      return;
    }
    if (policy !== 'unbuilt') request = { ...request, policy };
  }
  if (gate !== undefined) {
    const verdict = await gate.check(request);
    if (!verdict.ok) {
      send({ type: 'result', id: request.id, ok: false, error: { code: verdict.code, message: verdict.message }, durationMs: 0 });
      return;
    }
  }
  let response: SandboxRunResponse;
  try {
    const id = request.id;
    response = await runInIsolate(request, pool, cancelled, (capability) => send({ type: 'reached', id, capability }), stopOrdered);
  } catch (error) {
    // runInIsolate does not throw; this guards the host against its own bugs.
    response = {
      type: 'result',
      id: request.id,
      ok: false,
      error: { code: 'ERR_SANDBOX_CRASHED', message: `sandbox host failed: ${error instanceof Error ? error.message : String(error)}` },
      durationMs: 0,
    };
  }
  send(response);
}

function heldRulesOf(spec: PolicyGateSpec): PolicyGateSpec | 'unbuilt' | undefined {
  try {
    return withHeldRules(spec);
  } catch {
    return 'unbuilt';
  }
}

/** How long a closing host waits for isolate work in flight (a spare being made ready) to end. */
const CLOSE_DRAIN_MS = 2_000;
/** How long a closing host may take to end on its own before it is made to exit. */
const CLOSE_DEADLINE_MS = 10_000;

/**
 * Ends the host by letting its event loop empty rather than by `process.exit`: isolated-vm
 * disposes an isolate on one of its own threads when a task still held it, and only Node's
 * ordinary shutdown runs the cleanup hook that waits for that thread. `process.exit` tears the
 * platform down under it, which crashed the host (SIGSEGV/SIGABRT in
 * NodePlatform::UnregisterIsolate) in about 1 close of 50 on a loaded machine.
 */
async function closeHost(pool: IsolatePool, gate: CredentialGate | undefined): Promise<void> {
  // Unref'd: the deadline must not itself keep the host alive.
  setTimeout(() => process.exit(0), CLOSE_DEADLINE_MS).unref();
  pool.close();
  closeSharedSqlProcessPool();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([pool.drain(), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_DRAIN_MS)))]);
  clearTimeout(timer);
  await gate?.close().catch(() => undefined);
  process.exitCode = 0;
}

/**
 * The credential gate of `stateDir`, or, when its stores cannot be opened (the state folder is a
 * file, `identity.db` a folder, a folder it may not write), a gate that refuses every call, the
 * start-up probe included, with the reason: the worker learns it as a typed error when it awaits
 * the host's probe (`SandboxClient.boot`'s `ready`), and the host never dies with an uncaught
 * exception, whose raw report would land on the stderr it shares with `warden run` (issue 17: a
 * host booted before the run read its task file printed one next to the task file's errors).
 */
function openGateOrRefuser(stateDir: string, options: CredentialGateOptions): CredentialGate {
  try {
    return createCredentialGate(stateDir, options);
  } catch (error) {
    const cause = (error as { code?: unknown }).code;
    const code: ErrorCode = isErrorCode(cause) ? cause : 'ERR_STATE_UNAVAILABLE';
    const message = cutText(`the sandbox host cannot open the credential stores of ${stateDir}: ${error instanceof Error ? error.message : String(error)}`, 2000);
    return {
      check: async () => ({ ok: false, code, message }),
      close: async () => undefined,
    };
  }
}

/**
 * Builds, once, what every task's first sandboxed call needs whatever its rules (the default
 * packs' rules read, compiled and, without the build's record of them, validated by a cedar-wasm
 * loaded for it), so that call does not pay for it (issue 17: run from the sources, building the
 * first call's rules took 0.76 s, 0.33 s of CPU, of that call's 1.3 s; later calls 0.3 ms). Checks nothing less: a
 * call's rules are still validated and built as before. A failure here is left to the first call
 * that needs the same work, which reports it.
 */
export function warmHost(): void {
  try {
    warmPolicyEngine();
  } catch {
    // Reported by the call that needs it.
  }
}

/**
 * Writes `notice` to the notice pipe `fd` and returns once every byte is in the kernel: from then
 * on the client reads it even if this host dies, so the use it announces may go ahead. Blocks
 * while the pipe is full (the client not reading): the use waits for its notice. Throws when the
 * pipe is gone (the client too): the use does not go ahead.
 */
export function writeNoticeSync(fd: number, notice: SandboxNotice): void {
  writeAllSync(fd, Buffer.from(`${JSON.stringify(notice)}\n`, 'utf8'));
}

/** isolated-vm's message when V8 ran out of heap for an isolate (environment.cc, OOMErrorCallback). */
const OUT_OF_MEMORY_MESSAGE = /out-of-memory/i;

/**
 * What the host does when V8 gives up on one of its isolates (isolated-vm's `onCatastrophicError`:
 * one allocation that does not fit under the isolate's heap limit, a Map's or an array's backing
 * store growing, fails as a fatal out-of-memory however far below `memoryLimit` the heap is, s15).
 * isolated-vm's advice is followed to the letter: stop serving, finish outstanding work, then
 * abort. The isolate's thread is parked for good by isolated-vm and the other isolates are
 * independent heaps, so the calls running in them finish as if nothing happened (another task's
 * payment in flight is answered); only the call that leased the lost isolate is lost, and it is
 * named at once on the notice pipe (the client answers it, not run again, and sends this host no
 * more calls). Calls that still arrive are refused as not run. Once every call but the lost ones
 * has been answered and every answer has left the process (`unsent`: an answer the IPC channel
 * could not take at once waits in this process, and an abort would drop it), the host aborts; the
 * client has started its replacement by then. A notice that cannot be written (the client is
 * gone) aborts at once.
 */
export function retireAfterCatastrophe(
  inFlight: ReadonlyMap<string, unknown>,
  send: (notice: SandboxNotice) => void,
  abort: (message: string) => void = abortHostProcess,
  unsent: () => number = () => 0,
): { onCatastrophicError: (message: string, holder: string | undefined) => void; reason: () => string | undefined; abortIfDone: () => void } {
  let reason: string | undefined;
  const lost = new Set<string>();
  const abortIfDone = () => {
    if (reason === undefined) return;
    for (const id of inFlight.keys()) if (!lost.has(id)) return;
    if (unsent() > 0) return;
    abort(reason);
  };
  const onCatastrophicError = (message: string, holder: string | undefined) => {
    reason ??= cutText(message, 200);
    if (holder !== undefined && !lost.has(holder)) {
      lost.add(holder);
      try {
        send({ type: 'crashed', id: holder, cause: OUT_OF_MEMORY_MESSAGE.test(message) ? 'out-of-memory' : 'lost' });
      } catch {
        abort(message);
        return;
      }
    }
    abortIfDone();
  };
  return { onCatastrophicError, reason: () => reason, abortIfDone };
}

/** Serves requests from the parent process until the IPC channel closes. */
export function serveOverIpc(): void {
  // Without the notice pipe (a client that did not open one), notices go on the IPC channel.
  const noticePipe = process.env[SANDBOX_NOTICE_FD_ENV] === String(SANDBOX_NOTICE_FD);
  // Messages handed to the IPC channel that have not left this process yet (a large answer waits
  // in it while the socket is full): a retiring host aborts only once there are none.
  let unsent = 0;
  const sent = () => {
    unsent -= 1;
    retirement.abortIfDone();
  };
  const send: Send = (message) => {
    if ((message.type === 'reached' || message.type === 'crashed') && noticePipe) {
      writeNoticeSync(SANDBOX_NOTICE_FD, message);
      return;
    }
    unsent += 1;
    try {
      if (process.send === undefined) sent();
      else process.send(message, undefined, undefined, sent);
    } catch {
      // The parent is gone; there is nobody left to tell and 'disconnect' ends this process.
      sent();
    }
  };
  const identityDir = process.env[SANDBOX_IDENTITY_DIR_ENV];
  const inFlight = new Map<string, AbortController>();
  const retirement = retireAfterCatastrophe(inFlight, send, abortHostProcess, () => unsent);
  const pool = new IsolatePool({ onCatastrophicError: retirement.onCatastrophicError });
  const services: HostServices = {
    pool,
    inFlight,
    stopOrdered: new Map(),
    retiring: retirement.reason,
    ...(identityDir
      ? {
          gate: openGateOrRefuser(identityDir, {
            ...(process.env[SANDBOX_DATABASE_URL_ENV] ? { databaseUrl: process.env[SANDBOX_DATABASE_URL_ENV] } : {}),
            ...(process.env[SANDBOX_JWKS_FILE_ENV] ? { jwksFile: process.env[SANDBOX_JWKS_FILE_ENV] } : {}),
          }),
        }
      : {}),
  };
  // A SQL process boots beside the host, and the host answers nothing (its start-up probe first)
  // before that process is ready: a task's first statement never waits for one to boot, and the
  // client's boot allowance covers both.
  const sqlReady = sharedSqlProcessPool().prewarm();
  let warmed = false;
  process.on('message', (raw: unknown) => {
    // A ping is answered at once, not behind the SQL process's boot: it asks whether this thread runs.
    if (typeof raw === 'object' && raw !== null && (raw as { type?: unknown }).type === 'ping') {
      void handleHostMessage(raw, send, services);
      return;
    }
    void sqlReady.then(() => handleHostMessage(raw, send, services)).then(() => {
      retirement.abortIfDone();
      // After the first answer (the worker's start-up probe, which it awaits before polling):
      // what the first tool call would otherwise do, while the host waits for it (issue 17).
      if (warmed) return;
      warmed = true;
      setImmediate(warmHost);
    });
  });
  process.on('disconnect', () => {
    // A retiring host has an isolate V8 gave up on: an ordinary shutdown would wait for its thread.
    const reason = retirement.reason();
    if (reason !== undefined) abortHostProcess(reason);
    void closeHost(pool, services.gate);
  });
}

if (require.main === module && typeof process.send === 'function') serveOverIpc();
