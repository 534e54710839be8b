/**
 * The worker's side of the sandbox: forks the sandbox host process and sends it tool calls.
 *
 * Invariants:
 * - The worker never runs tool code. Everything runs in the host, a separate process.
 * - `run` always resolves with a SandboxRunResponse (it rejects only on misuse or after close):
 *   if the host exits, every call it owed gets ERR_SANDBOX_CRASHED, retryable for a call that had
 *   reached no capability (the host says which it reached, SandboxReachedNotice), naming what it
 *   reached otherwise (effects may have happened). The host writes each notice synchronously on
 *   a pipe of its own before the use goes ahead, and a lost host's calls are answered only once
 *   its process has exited and that pipe and the IPC channel have closed (`close`: every notice
 *   and answer it sent read). A call whose isolate V8 gave up on (SandboxCrashedNotice) is answered
 *   at once, not retryable; its host retires (no new calls; a replacement is started at once) and
 *   ends once its other calls are answered, which go on as if nothing happened. If a call
 *   overruns its timeout by more than the grace period and its host is then found wedged
 *   (Liveness, below), the host is killed and the call gets ERR_SANDBOX_TIMEOUT. A replacement
 *   host is started at once (warm for the next call) when the lost one had booted; otherwise the
 *   next call starts one.
 * - A call whose `signal` aborts (its activity was cancelled) is stopped before it is answered:
 *   the host is told to dispose of its isolate and abort its capability requests, and answers
 *   ERR_TOOL_CANCELLED once it has (a SQL statement is stopped by killing its SQL process, so the
 *   host's main thread is never held by one); a host that does not answer within `cancelGraceMs`
 *   and is then found wedged (below) is killed, and the call is answered only once the host has
 *   exited. Either way nothing of the call runs on after its answer.
 * - Liveness: a host is presumed wedged from evidence that it makes no progress, never from the
 *   wall clock alone (on a loaded machine a healthy host answers late, its threads waiting for a
 *   core; killing it failed every other call on it too). When a call has no answer at its
 *   timeout + `deadlineGraceMs` (+ `bootAllowanceMs` before the host's first answer), or
 *   `cancelGraceMs` after its cancel, the client pings the host about that call
 *   (SandboxPingRequest; never sent on the happy path), and again PING_INTERVAL_MS after each
 *   answer. The host's main thread answers at once (SandboxAliveResponse) with how the call
 *   stands: running, told to stop `stoppingForMs` ago, or absent. The host is killed, its call
 *   answered as before (ERR_SANDBOX_TIMEOUT at once; ERR_TOOL_CANCELLED once the host exited)
 *   and its other calls ERR_SANDBOX_CRASHED, only when:
 *   (1) a ping goes unanswered for `livenessWindowMs`: its main thread makes no progress (a busy
 *       loop, a stopped process); except that a host which has answered nothing yet and used CPU
 *       time in that window is still loading its modules, and is pinged again;
 *   (2) it says the call's isolate was told to stop `livenessWindowMs` or more ago (host time)
 *       and has not ended: an isolate that ignores terminate;
 *   (3) whatever it says (it is untrusted), the call is still unanswered `overrunLimitMs` after
 *       the first ping.
 *   Bounds: every call is answered by its first ping + `overrunLimitMs` (a cancelled call once
 *   its killed host has exited); a booted host whose main thread stops is killed by its first
 *   ping + PING_INTERVAL_MS + `livenessWindowMs`; with the defaults (grace 2 s, window 10 s,
 *   limit 60 s), a stopped or spinning host is killed 12-13 s past the call's timeout. The
 *   defaults are in liveness-bounds.ts, from which the workflows size the activities that call
 *   the sandbox: an activity timed out by the server before its call is answered is retried,
 *   the retry sent to the same host while the call may still run there.
 * - The host is untrusted: a message that does not validate against SandboxRunResponseSchema (or
 *   SandboxAliveResponseSchema, SandboxNoticeSchema) gets the host killed. Responses are matched
 *   to calls by id and by the host that was asked.
 * - The host gets a scrubbed environment (by default only PATH, TMPDIR, TZ and locale), so worker
 *   secrets such as API keys are not present in the process that runs tool code.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { childCodeCacheEnv } from '../cli/module-code-cache';
import * as path from 'node:path';
import { SandboxError, type ErrorCode } from '../errors';
import { readProcStat } from '../process-stat';
import { clearLongTimeout, setLongTimeout, type LongTimeout } from '../long-timer';
import { SANDBOX_BOOT_ALLOWANCE_MS, SANDBOX_CANCEL_GRACE_MS, SANDBOX_DEADLINE_GRACE_MS, SANDBOX_LIVENESS_WINDOW_MS, SANDBOX_OVERRUN_LIMIT_MS } from './liveness-bounds';
import { SANDBOX_DATABASE_URL_ENV, SANDBOX_IDENTITY_DIR_ENV, SANDBOX_JWKS_FILE_ENV, SANDBOX_NOTICE_FD, SANDBOX_NOTICE_FD_ENV, SANDBOX_PROBE_CALL, SANDBOX_RULES_UNKNOWN, SandboxNoticeSchema, SandboxRunRequestSchema, SandboxRunResponseSchema, type PolicyGateSpec, SandboxAliveResponseSchema, type SandboxAliveResponse, type SandboxCancelRequest, type SandboxCrashedNotice, type SandboxPingRequest, type SandboxRunRequest, type SandboxRunResponse } from './sandbox-messages';

/** One tool call as the worker describes it; the client adds `type` and `id`. */
export type SandboxCall = Omit<SandboxRunRequest, 'type' | 'id'>;

export interface SandboxClientOptions {
  /** Time past a call's `timeoutMs` before its host's liveness is checked (header, "Liveness"). Default 2000 ms. */
  deadlineGraceMs?: number;
  /** Time a cancelled call's host has to stop it and answer before its liveness is checked. Default 2000 ms. */
  cancelGraceMs?: number;
  /**
   * How long a host checked for liveness may leave a ping unanswered, and a call's isolate told
   * to stop may take to end, before the host is presumed wedged and killed. Default 10000 ms.
   */
  livenessWindowMs?: number;
  /** Longest a call is waited for past its liveness check began, whatever its host says, before the host is killed. Default 60000 ms. */
  overrunLimitMs?: number;
  /** Extra time allowed for calls sent to a host that has not answered anything yet (it is still booting). Default 15000 ms. */
  bootAllowanceMs?: number;
  /** Environment of the host process. Default: PATH, TMPDIR, TZ, LANG and LC_ALL from the worker's. */
  env?: NodeJS.ProcessEnv;
  /**
   * State folder whose public keys and credential stores the host verifies calls with. When set,
   * the host runs nothing (but the fixed start-up probe) without a valid per-call credential.
   */
  identityStateDir?: string;
  /** The shared state database (PostgreSQL URL) holding the revocation and replay stores, when workers share one. */
  identityDatabaseUrl?: string;
  /** A public JWKS file to verify with instead of the state folder's (one key from a key source). */
  identityJwksFile?: string;
}

/** Counters for monitoring and tests. */
export interface SandboxClientStats {
  /** Host processes started, including the first and warm replacements. */
  hostStarts: number;
  /** Host processes that ended while the client was open (crashed, or killed by the client). */
  hostExits: number;
  /** Calls answered with ERR_SANDBOX_TIMEOUT by the worker-side deadline (their host found wedged). */
  deadlineKills: number;
  /** Liveness checks begun (a call overran its deadline or cancel grace), whether or not the host was then killed. */
  livenessChecks: number;
  /** Hosts killed because a cancelled call was not stopped within the cancel grace and the host was found wedged. */
  cancelKills: number;
  /** Calls sent and not yet answered. */
  inFlight: number;
  /** Hosts that lost an isolate to V8 and are finishing their other calls before they end (they take no new ones). */
  retiringHosts: number;
  /** Calls sent with their policy's compiled rules in full (once per `rulesKey` and host, and again after the host dropped them). */
  rulesSent: number;
}

interface HostHandle {
  child: ChildProcess;
  /** Set once the host has sent one valid response: it has booted. */
  answered: boolean;
  gone: boolean;
  /** Why it was lost (the first reason given), once `gone`. */
  lostReason?: string;
  /** Set once its process exited and its notice pipe and IPC channel closed: all it sent has been read. */
  closed: boolean;
  /** `rulesKey`s whose rules this host was sent: later calls leave the rules out. */
  rulesKeys: Set<string>;
}

interface PendingCall {
  host: HostHandle;
  resolve: (response: SandboxRunResponse) => void;
  timer: LongTimeout;
  /** Milliseconds the call was given before its host's liveness is checked. */
  budgetMs: number;
  /** Set once the call was cancelled: its host's liveness is checked when it fires. */
  cancelTimer?: LongTimeout;
  /** Set once the call overran its deadline or cancel grace: its host's liveness check. */
  watch?: LivenessWatch;
  /** Capabilities the host said the call reached (SandboxReachedNotice): what may have had effects. */
  reached: Set<string>;
}

/** The liveness check of one overdue call (header, "Liveness"). */
interface LivenessWatch {
  /** What is overdue: the call's answer (its deadline), or its stop after a cancel. Decides how a kill answers it. */
  cause: 'deadline' | 'cancel';
  /** Set while a ping is unanswered: fires after `livenessWindowMs`. */
  silence?: LongTimeout;
  /** Sends the next ping. */
  next?: NodeJS.Timeout;
  /** Fires `overrunLimitMs` after the check began. */
  limit: LongTimeout;
  /** CPU time (clock ticks) of a host that has not answered anything yet, when the last ping went out. */
  bootCpuTicks?: number;
}

/** Options of one call. */
export interface SandboxRunOptions {
  /** The activity's cancellationSignal: on abort the call is stopped and answered ERR_TOOL_CANCELLED. */
  signal?: AbortSignal;
}

// The compiled package forks the compiled host; the TypeScript sources fork the source through tsx.
const FROM_SOURCE = path.extname(__filename) === '.ts';
const HOST_MODULE = path.join(__dirname, FROM_SOURCE ? 'sandbox-host.ts' : 'sandbox-host.js');
const HOST_EXEC_ARGV = FROM_SOURCE ? ['--no-node-snapshot', '--require', require.resolve('tsx/cjs')] : ['--no-node-snapshot'];
/** Time between a host's answer to a ping and the next ping (at most half the liveness window). */
const PING_INTERVAL_MS = 1000;
const STOP_TIMEOUT_MS = 2000;
/** How long after its exit a host's calls wait for its pipes to close before they are answered anyway. */
const CLOSE_AFTER_EXIT_MS = 5_000;
/** Longest line the notice pipe carries (a notice is well under it). */
const MAX_NOTICE_CHARS = 4_096;
const HOST_ENV_NAMES = ['PATH', 'TMPDIR', 'TZ', 'LANG', 'LC_ALL'];

/** The trivial call `start` sends to prove the host works end to end. */
export class SandboxClient {
  readonly #deadlineGraceMs: number;
  readonly #bootAllowanceMs: number;
  readonly #cancelGraceMs: number;
  readonly #livenessWindowMs: number;
  readonly #overrunLimitMs: number;
  readonly #env: NodeJS.ProcessEnv;
  readonly #pending = new Map<string, PendingCall>();
  #host: HostHandle | undefined;
  /** Hosts that lost an isolate to V8 (SandboxCrashedNotice): they get no new calls, finish theirs and abort. */
  readonly #retiring = new Set<HostHandle>();
  #nextId = 0;
  #closed = false;
  #hostStarts = 0;
  #hostExits = 0;
  #deadlineKills = 0;
  #cancelKills = 0;
  #livenessChecks = 0;
  #rulesSent = 0;

  private constructor(options: SandboxClientOptions) {
    this.#deadlineGraceMs = options.deadlineGraceMs ?? SANDBOX_DEADLINE_GRACE_MS;
    this.#bootAllowanceMs = options.bootAllowanceMs ?? SANDBOX_BOOT_ALLOWANCE_MS;
    this.#cancelGraceMs = options.cancelGraceMs ?? SANDBOX_CANCEL_GRACE_MS;
    this.#livenessWindowMs = options.livenessWindowMs ?? SANDBOX_LIVENESS_WINDOW_MS;
    this.#overrunLimitMs = options.overrunLimitMs ?? SANDBOX_OVERRUN_LIMIT_MS;
    this.#env = {
      ...(options.env ?? scrubbedEnv(process.env)),
      // The host's modules compile with this process's code cache, when it has one (cli/module-code-cache.ts).
      ...childCodeCacheEnv(),
      ...(options.identityStateDir === undefined ? {} : { [SANDBOX_IDENTITY_DIR_ENV]: options.identityStateDir }),
      ...(options.identityDatabaseUrl === undefined ? {} : { [SANDBOX_DATABASE_URL_ENV]: options.identityDatabaseUrl }),
      ...(options.identityJwksFile === undefined ? {} : { [SANDBOX_JWKS_FILE_ENV]: options.identityJwksFile }),
      [SANDBOX_NOTICE_FD_ENV]: String(SANDBOX_NOTICE_FD),
    };
  }

  /** Starts a host process and waits until it has run a probe call. Throws SandboxError if it cannot. */
  static async start(options: SandboxClientOptions = {}): Promise<SandboxClient> {
    const { client, ready } = SandboxClient.boot(options);
    await ready;
    return client;
  }

  /**
   * Starts a host process now and returns its client at once, with `ready`, which settles once the
   * host has run a probe call: a worker builds its other parts while the host boots (issue 17).
   * `ready` rejects with SandboxError `ERR_SANDBOX_CRASHED` (the client then closed) if the host
   * cannot start; a caller must not hand the client out before `ready` resolved.
   */
  static boot(options: SandboxClientOptions = {}): { client: SandboxClient; ready: Promise<void> } {
    const client = new SandboxClient(options);
    const ready = client.run(SANDBOX_PROBE_CALL).then(async (probe) => {
      if (probe.ok && probe.output === 'ready') return;
      await client.close();
      const reason = probe.ok ? 'unexpected probe output' : `${probe.error.code}: ${probe.error.message}`;
      throw new SandboxError('ERR_SANDBOX_CRASHED', `the sandbox host did not start: ${reason}`, { retryable: true });
    });
    return { client, ready };
  }

  /** Process id of the current host, if one is running. */
  get pid(): number | undefined {
    return this.#host?.gone === false ? this.#host.child.pid : undefined;
  }

  get stats(): SandboxClientStats {
    return { hostStarts: this.#hostStarts, hostExits: this.#hostExits, deadlineKills: this.#deadlineKills, livenessChecks: this.#livenessChecks, cancelKills: this.#cancelKills, inFlight: this.#pending.size, retiringHosts: this.#retiring.size, rulesSent: this.#rulesSent };
  }

  /**
   * Runs one tool call in the host (starting a new host if the last one died). Resolves with the
   * host's response or with ERR_SANDBOX_CRASHED / ERR_SANDBOX_TIMEOUT, or ERR_TOOL_CANCELLED once
   * a call whose `options.signal` aborted has stopped (see the header); rejects with a TypeError if
   * `call` is malformed and with a SandboxError after `close`.
   */
  run(call: SandboxCall, options: SandboxRunOptions = {}): Promise<SandboxRunResponse> {
    if (this.#closed) return Promise.reject(new SandboxError('ERR_SANDBOX_CRASHED', 'the sandbox client is closed'));
    // Every field of the call goes to the host (checked against the schema in #send), none picked by hand.
    // JSON has no undefined; the host requires the input's key.
    const request: SandboxRunRequest = { ...call, type: 'run', id: '', input: call.input === undefined ? null : call.input };
    const rulesKey = call.policy?.rules === undefined ? undefined : call.policy.rulesKey;
    const { signal } = options;
    if (rulesKey === undefined) return this.#send(request, false, signal);
    return this.#send(request, true, signal).then((response) => {
      if (response.ok || response.error.code !== SANDBOX_RULES_UNKNOWN) return response;
      // The host no longer holds the engine (its cache is bounded): once more, rules included.
      this.#host?.rulesKeys.delete(rulesKey);
      return this.#send(request, false, signal).then((again) =>
        again.ok || again.error.code !== SANDBOX_RULES_UNKNOWN ? again : failure(again.id, 'ERR_SANDBOX_CRASHED', 'the sandbox host refused rules it was sent'),
      );
    });
  }

  /**
   * Checks `request` and sends it (a fresh id) to the current host, starting one if none runs.
   * `mayOmitRules`: its policy's rules are left out when this host was sent them before (and
   * are checked here only when sent).
   */
  #send(request: SandboxRunRequest, mayOmitRules: boolean, signal: AbortSignal | undefined): Promise<SandboxRunResponse> {
    if (signal?.aborted === true) {
      this.#nextId += 1;
      return Promise.resolve(failure(String(this.#nextId), 'ERR_TOOL_CANCELLED', 'the tool call was cancelled before it was sent to the sandbox host'));
    }
    let host: HostHandle;
    try {
      host = this.#currentHost();
    } catch (error) {
      this.#nextId += 1;
      return Promise.resolve(failure(String(this.#nextId), 'ERR_SANDBOX_CRASHED', `cannot start the sandbox host: ${messageOf(error)}`));
    }
    const policy = request.policy;
    const omit = mayOmitRules && policy !== undefined && host.rulesKeys.has(policy.rulesKey);
    const sent = omit ? { ...request, policy: withoutRules(policy) } : request;
    const checked = SandboxRunRequestSchema.safeParse(sent);
    if (!checked.success) return Promise.reject(new TypeError(`invalid sandbox call: ${checked.error.message}`));
    this.#nextId += 1;
    const id = String(this.#nextId);
    const message = { ...checked.data, id };
    if (message.policy?.rules !== undefined) this.#rulesSent += 1;
    return new Promise((resolve) => {
      const budget = message.limits.timeoutMs + this.#deadlineGraceMs + (host.answered ? 0 : this.#bootAllowanceMs);
      // The tool's timeout may be a task's (up to 30 days): past 2^31 - 1 ms a bare timer fires at once.
      const timer = setLongTimeout(() => this.#onDeadline(id), budget);
      const onAbort = () => this.#cancel(id);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        host,
        resolve: (response) => {
          signal?.removeEventListener('abort', onAbort);
          // The host builds and keeps the engine when it receives rules (policy-gate.ts `withHeldRules`).
          if (policy?.rules !== undefined && !omit && response.id === id && !host.gone) host.rulesKeys.add(policy.rulesKey);
          resolve(response);
        },
        timer,
        budgetMs: budget,
        reached: new Set(),
      });
      this.#sendOrDiscard(host, message);
    });
  }

  /** Sends `message` to `host`; a host that cannot be reached is discarded (its calls answered once it closed). */
  #sendOrDiscard(host: HostHandle, message: SandboxRunRequest | SandboxPingRequest): void {
    try {
      host.child.send(message, (error) => {
        if (error) this.#discardHost(host, `cannot reach the sandbox host: ${error.message}`);
      });
    } catch (error) {
      this.#discardHost(host, `cannot reach the sandbox host: ${messageOf(error)}`);
    }
  }

  /**
   * Stops the pending call `id`: its host is asked to, and is checked for liveness if it has not
   * answered within the cancel grace (killed if found wedged); the call is answered
   * (ERR_TOOL_CANCELLED) only once the host exited then.
   */
  #cancel(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.cancelTimer !== undefined) return;
    const { host } = pending;
    pending.cancelTimer = setLongTimeout(() => this.#onCancelGrace(id), this.#cancelGraceMs);
    const message: SandboxCancelRequest = { type: 'cancel', id };
    // A cancel the host cannot be sent leaves the call running there: the host is killed, as a wedged one.
    const unsent = () => {
      this.#onCancelGrace(id);
      this.#presumeWedged(id, 'the cancel could not be sent to it');
    };
    try {
      host.child.send(message, (error) => {
        if (error) unsent();
      });
    } catch {
      unsent();
    }
  }

  /** The cancelled call `id` was not stopped within the cancel grace: its host's liveness is checked (a check under way for its deadline now answers it as cancelled). */
  #onCancelGrace(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    if (pending.watch !== undefined) pending.watch.cause = 'cancel';
    else this.#watch(id, pending, 'cancel');
  }

  /** The call `id` overran its deadline: its host's liveness is checked (header, "Liveness"). */
  #onDeadline(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.watch !== undefined) return;
    this.#watch(id, pending, 'deadline');
  }

  #watch(id: string, pending: PendingCall, cause: LivenessWatch['cause']): void {
    this.#livenessChecks += 1;
    pending.watch = { cause, limit: setLongTimeout(() => this.#presumeWedged(id, `its call had no answer ${this.#overrunLimitMs} ms after the host's liveness check began`), this.#overrunLimitMs) };
    this.#ping(id);
  }

  /** Asks the host of the overdue call `id` how it stands; no answer within the liveness window gets it killed. */
  #ping(id: string): void {
    const pending = this.#pending.get(id);
    if (pending?.watch === undefined) return;
    const { watch, host } = pending;
    watch.next = undefined;
    watch.bootCpuTicks = host.answered ? undefined : cpuTicksOf(host.child.pid);
    watch.silence = setLongTimeout(() => this.#onSilence(id), this.#livenessWindowMs);
    this.#sendOrDiscard(host, { type: 'ping', id });
  }

  /**
   * The host of the overdue call `id` left a ping unanswered for the liveness window: it is wedged,
   * unless it has not answered anything yet and spent CPU time meanwhile (it is still loading its
   * modules, which holds the main thread on a loaded machine): then it is pinged again.
   */
  #onSilence(id: string): void {
    const pending = this.#pending.get(id);
    if (pending?.watch === undefined) return;
    const { watch, host } = pending;
    watch.silence = undefined;
    const before = watch.bootCpuTicks;
    const now = host.answered ? undefined : cpuTicksOf(host.child.pid);
    if (before !== undefined && now !== undefined && now > before) {
      this.#ping(id);
      return;
    }
    this.#presumeWedged(id, `it did not answer a liveness check within ${this.#livenessWindowMs} ms`);
  }

  /** The host answered a ping: it is alive, unless it says the call's isolate was told to stop a liveness window ago and has not. */
  #onAlive(host: HostHandle, alive: SandboxAliveResponse): void {
    const pending = this.#pending.get(alive.id);
    // Only an answer to a ping in flight counts: a host cannot keep itself alive by sending them unasked.
    if (pending === undefined || pending.host !== host || pending.watch?.silence === undefined) return;
    const { watch } = pending;
    clearLongTimeout(watch.silence);
    watch.silence = undefined;
    if (alive.call === 'stopping' && (alive.stoppingForMs ?? 0) >= this.#livenessWindowMs) {
      this.#presumeWedged(alive.id, `it told the call's isolate to stop ${alive.stoppingForMs} ms ago and the isolate has not stopped`);
      return;
    }
    watch.next = setTimeout(() => this.#ping(alive.id), Math.min(PING_INTERVAL_MS, this.#livenessWindowMs / 2));
  }

  /**
   * The overdue call `id`'s host is wedged (`why`): it is killed; the call is answered
   * ERR_SANDBOX_TIMEOUT at once (deadline), or ERR_TOOL_CANCELLED once the host exited (cancel).
   */
  #presumeWedged(id: string, why: string): void {
    const pending = this.#pending.get(id);
    if (pending?.watch === undefined) return;
    const { host } = pending;
    if (pending.watch.cause === 'cancel') {
      this.#pending.delete(id);
      clearCallTimers(pending);
      this.#cancelKills += 1;
      const exited = host.child.exitCode !== null || host.child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => host.child.once('exit', () => resolve()));
      this.#discardHost(host, `the sandbox host was killed: a cancelled call did not stop and ${why}`);
      void exited.then(() => pending.resolve(failure(id, 'ERR_TOOL_CANCELLED', `the tool call was cancelled and did not stop: its sandbox host was killed (${why})`)));
      return;
    }
    this.#deadlineKills += 1;
    // A host that never answered was still starting (or cannot start): the call did not overrun.
    const message = pending.host.answered
      ? `the tool call overran its timeout and the sandbox host did not stop it (${why}); the host was restarted`
      : `the sandbox host did not answer its first call within ${pending.budgetMs} ms of being started (the call's timeout, ${this.#deadlineGraceMs} ms grace and a ${this.#bootAllowanceMs} ms boot allowance), and ${why}: a very loaded machine, or a host that cannot start; it was stopped`;
    this.#answer(id, failure(id, 'ERR_SANDBOX_TIMEOUT', message));
    this.#discardHost(host, `the sandbox host was killed after a call overran its deadline (${why})`);
  }

  /** Answers every pending call with ERR_SANDBOX_CRASHED and stops the host. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#answer(id, failure(id, 'ERR_SANDBOX_CRASHED', 'the sandbox client was closed'));
    const hosts = [...this.#retiring, ...(this.#host === undefined ? [] : [this.#host])];
    this.#host = undefined;
    this.#retiring.clear();
    await Promise.all(hosts.map((host) => stopProcess(host.child)));
  }

  #currentHost(): HostHandle {
    if (this.#host !== undefined && !this.#host.gone) return this.#host;
    const child = fork(HOST_MODULE, [], {
      execArgv: HOST_EXEC_ARGV,
      serialization: 'json',
      // Index SANDBOX_NOTICE_FD: the notice pipe.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      env: this.#env,
    });
    const host: HostHandle = { child, answered: false, gone: false, closed: false, rulesKeys: new Set() };
    this.#hostStarts += 1;
    this.#host = host;
    child.on('message', (raw: unknown) => this.#onMessage(host, raw));
    this.#readNotices(host);
    child.on('exit', (code, signal) => {
      this.#onHostGone(host, `the sandbox host exited (${signal ?? `code ${code}`})`);
      // `close` follows once what the host sent has been read; should it not (a pipe held open), its calls are answered anyway.
      setTimeout(() => this.#onHostClosed(host), CLOSE_AFTER_EXIT_MS).unref();
    });
    child.on('close', () => this.#onHostClosed(host));
    child.on('error', (error) => this.#discardHost(host, `sandbox host process error: ${error.message}`));
    return host;
  }

  /** Reads the host's notice pipe: one SandboxNotice per line; anything else gets the host killed. */
  #readNotices(host: HostHandle): void {
    const pipe = host.child.stdio[SANDBOX_NOTICE_FD] as Readable | null | undefined;
    if (pipe === null || pipe === undefined) return;
    // A notice is a short line: a longer one is not a notice.
    let partial = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (text: string) => {
      if (host.closed) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#onNotice(host, parseJson(line));
      if (partial.length > MAX_NOTICE_CHARS) this.#discardHost(host, 'the sandbox host sent a malformed message');
    });
    pipe.on('error', () => undefined);
  }

  #onNotice(host: HostHandle, raw: unknown): void {
    const notice = SandboxNoticeSchema.safeParse(raw);
    if (!notice.success) {
      this.#discardHost(host, 'the sandbox host sent a malformed message');
      return;
    }
    if (notice.data.type === 'crashed') this.#retire(host);
    const pending = this.#pending.get(notice.data.id);
    if (pending === undefined || pending.host !== host) return;
    if (notice.data.type === 'reached') pending.reached.add(notice.data.capability);
    // Its own failure, answered now: the host finishes the other calls before it ends.
    else this.#answer(notice.data.id, lostItsIsolate(notice.data.id, pending, notice.data.cause));
  }

  /**
   * `host` lost an isolate to V8 and ends once its other calls are answered: new calls go to a
   * replacement, started now (warm for the next call); its own calls stay with it.
   */
  #retire(host: HostHandle): void {
    if (host.gone || this.#closed) return;
    this.#retiring.add(host);
    if (this.#host !== host) return;
    this.#host = undefined;
    setImmediate(() => this.#warmReplacement());
  }

  #onMessage(host: HostHandle, raw: unknown): void {
    const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
    if (type === 'reached' || type === 'crashed') {
      this.#onNotice(host, raw);
      return;
    }
    if (type === 'alive') {
      const alive = SandboxAliveResponseSchema.safeParse(raw);
      if (alive.success) this.#onAlive(host, alive.data);
      else this.#discardHost(host, 'the sandbox host sent a malformed message');
      return;
    }
    const parsed = SandboxRunResponseSchema.safeParse(raw);
    if (!parsed.success) {
      this.#discardHost(host, 'the sandbox host sent a malformed message');
      return;
    }
    host.answered = true;
    const pending = this.#pending.get(parsed.data.id);
    if (pending === undefined || pending.host !== host) return; // late answer to a call already settled
    this.#answer(parsed.data.id, parsed.data);
  }

  /** Kills `host` (if still running) and answers its pending calls with ERR_SANDBOX_CRASHED once it has closed. */
  #discardHost(host: HostHandle, reason: string): void {
    if (!host.gone && host.child.exitCode === null && host.child.signalCode === null) host.child.kill('SIGKILL');
    this.#onHostGone(host, reason);
  }

  /**
   * `host` is lost: no call goes to it any more, and a booted one is replaced at once. Its pending
   * calls are answered once it has closed (#onHostClosed), after every notice it wrote was read.
   */
  #onHostGone(host: HostHandle, reason: string): void {
    const firstNotice = !host.gone;
    if (firstNotice) {
      host.gone = true;
      host.lostReason = reason;
      if (!this.#closed) this.#hostExits += 1;
    }
    if (this.#host === host) this.#host = undefined;
    if (host.closed) this.#answerLost(host);
    // A host that had booted is replaced at once, so the next call does not pay for a boot; one
    // that died before answering anything is not (a host that cannot start would loop).
    if (firstNotice && host.answered && !this.#closed) setImmediate(() => this.#warmReplacement());
  }

  /** `host` exited and closed its notice pipe and IPC channel: what it sent has all been read. */
  #onHostClosed(host: HostHandle): void {
    if (host.closed) return;
    host.closed = true;
    this.#retiring.delete(host);
    this.#onHostGone(host, `the sandbox host exited (${host.child.signalCode ?? `code ${host.child.exitCode}`})`);
  }

  #answerLost(host: HostHandle): void {
    const reason = host.lostReason ?? 'the sandbox host exited';
    for (const [id, pending] of [...this.#pending]) {
      if (pending.host === host) this.#answer(id, lostWithHost(id, pending, reason));
    }
  }

  /** Starts a host if none runs and sends it the probe call, so its first isolate is ready too. */
  #warmReplacement(): void {
    if (this.#closed || this.#host !== undefined) return;
    void this.run(SANDBOX_PROBE_CALL).catch(() => undefined);
  }

  #answer(id: string, response: SandboxRunResponse): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearCallTimers(pending);
    pending.resolve(response);
  }
}

/** Stops every timer of `pending` (its deadline, cancel grace and liveness check). */
function clearCallTimers(pending: PendingCall): void {
  clearLongTimeout(pending.timer);
  clearLongTimeout(pending.cancelTimer);
  if (pending.watch === undefined) return;
  clearLongTimeout(pending.watch.silence);
  clearTimeout(pending.watch.next);
  clearLongTimeout(pending.watch.limit);
}

/**
 * The answer of a call whose isolate V8 gave up on (SandboxCrashedNotice): its own failure, not
 * retryable (run again, it would end the replacement host as well): ERR_SANDBOX_MEMORY when V8 ran
 * out of heap for it, ERR_SANDBOX_CRASHED otherwise; the message names what it had reached.
 */
function lostItsIsolate(id: string, pending: PendingCall, cause: SandboxCrashedNotice['cause']): SandboxRunResponse {
  const effects = pending.reached.size === 0 ? 'it had reached no capability' : `after it had reached ${reachedNames(pending)}, whose effects may have happened`;
  return cause === 'out-of-memory'
    ? failure(id, 'ERR_SANDBOX_MEMORY', `the tool ran out of memory: V8 could not fit one of its allocations in the isolate's heap and gave the isolate up; ${effects}; it is not run again`)
    : failure(id, 'ERR_SANDBOX_CRASHED', `the call's isolate failed beyond V8's control and its sandbox host is retiring; ${effects}; it is not run again`);
}

/**
 * The answer of a call lost with its host (another call's cancellation or overrun, a crash, a
 * wedged host): ERR_SANDBOX_CRASHED either way, but a call that reached no capability did nothing
 * and is retryable (its activity runs it again, on the replacement host, with a fresh credential),
 * while one that did is not, and its message names what it reached, whose effects may have happened.
 */
function lostWithHost(id: string, pending: PendingCall, reason: string): SandboxRunResponse {
  if (pending.reached.size === 0) {
    return { type: 'result', id, ok: false, error: { code: 'ERR_SANDBOX_CRASHED', message: `${reason} while running the call; the call had reached no capability, so nothing of it happened and it may be run again`, retryable: true }, durationMs: 0 };
  }
  return failure(id, 'ERR_SANDBOX_CRASHED', `${reason} while running the call, after the call had reached ${reachedNames(pending)}: their effects may have happened`);
}

/** The capabilities a call reached, sorted, as a message names them. */
function reachedNames(pending: PendingCall): string {
  return [...pending.reached].sort().join(', ');
}

function withoutRules(policy: PolicyGateSpec): PolicyGateSpec {
  const { rules: _sent, ...rest } = policy;
  return rest;
}

function failure(id: string, code: ErrorCode, message: string): SandboxRunResponse {
  return { type: 'result', id, ok: false, error: { code, message }, durationMs: 0 };
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** CPU time (user + system, clock ticks) process `pid` has used, or undefined without /proc or the process. */
function cpuTicksOf(pid: number | undefined): number | undefined {
  const stat = pid === undefined ? undefined : readProcStat(pid);
  return stat === undefined ? undefined : stat.utime + stat.stime;
}

function scrubbedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const name of HOST_ENV_NAMES) if (env[name] !== undefined) kept[name] = env[name];
  return kept;
}

/** Asks the host to exit by closing its channel; kills it if it has not exited within STOP_TIMEOUT_MS. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
