/**
 * The sandbox section's baseline: a plain child process that runs the same tool function,
 * answering over the same kind of IPC channel as the sandbox host, with no isolate, no
 * validation and no limits. What the sandbox costs beyond this is the isolation itself.
 */
import { fork, type ChildProcess } from 'node:child_process';

const AsyncFunction = (async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;

interface BareRequest {
  id: string;
  source: string;
  input: unknown;
}

/** A forked bare host; `run` resolves with the function's output. */
export class BareIpcHost {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, (output: unknown) => void>();
  #next = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: { id: string; output: unknown }) => {
      this.#waiting.get(message.id)?.(message.output);
      this.#waiting.delete(message.id);
    });
  }

  static async start(): Promise<BareIpcHost> {
    const child = fork(__filename, [], {
      execArgv: ['--require', require.resolve('tsx/cjs')],
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { PATH: process.env.PATH ?? '', WARDEN_BARE_IPC_HOST: '1' },
    });
    const host = new BareIpcHost(child);
    await host.run('return "ready";', null);
    return host;
  }

  run(source: string, input: unknown): Promise<unknown> {
    this.#next += 1;
    const id = String(this.#next);
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.send({ id, source, input } satisfies BareRequest);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.disconnect();
    });
  }
}

if (require.main === module && process.env.WARDEN_BARE_IPC_HOST === '1') {
  process.on('message', (request: BareRequest) => {
    void new AsyncFunction('input', 'warden', request.source)(request.input, {}).then((output) => process.send?.({ id: request.id, output }));
  });
  process.on('disconnect', () => process.exit(0));
}
