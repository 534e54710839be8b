/**
 * MCP's stdio transport with the server inside the OS sandbox. The framing is the SDK's own
 * (`ReadBuffer`, `serializeMessage`: newline-delimited JSON-RPC); only the process is Warden's,
 * started by `startSandboxedProcess` instead of a plain spawn, so the server gets the sandbox's
 * namespaces, limits, workspace overlay and egress rules, and its whole tree dies with the
 * connection.
 */
import type { ReadBuffer } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { OsSandboxSpecInput } from '../sandbox/os/os-sandbox-spec';
import { startSandboxedProcess, type SandboxedProcess, type SandboxedProcessOptions, type SandboxExit } from '../sandbox/os/sandboxed-process';
import { mcpSdk } from './mcp-sdk';

/** Largest single JSON-RPC message accepted from a server (a bigger line is a protocol error). */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export class SandboxedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  readonly #spec: OsSandboxSpecInput;
  readonly #buffer: ReadBuffer = new (mcpSdk.stdio().ReadBuffer)({ maxBufferSize: MAX_MESSAGE_BYTES });
  #process: SandboxedProcess | undefined;
  #exit: SandboxExit | undefined;
  #closed = false;

  readonly #options: SandboxedProcessOptions;

  constructor(spec: OsSandboxSpecInput, options: SandboxedProcessOptions = {}) {
    this.#spec = spec;
    this.#options = options;
  }

  /** How the server's sandbox ended, once it has. */
  get exit(): SandboxExit | undefined {
    return this.#exit;
  }

  async start(): Promise<void> {
    if (this.#process !== undefined) throw new Error('SandboxedStdioTransport already started');
    const proc = await startSandboxedProcess(this.#spec, this.#options);
    this.#process = proc;
    proc.stdout.on('data', (chunk: Buffer) => {
      try {
        this.#buffer.append(chunk);
        for (;;) {
          let message: JSONRPCMessage | null;
          try {
            message = this.#buffer.readMessage();
          } catch (error) {
            this.onerror?.(error as Error);
            continue;
          }
          if (message === null) break;
          this.onmessage?.(message);
        }
      } catch (error) {
        // The buffer overflowed: a server that sends one unbounded line is cut off.
        this.onerror?.(error as Error);
        void this.close();
      }
    });
    proc.stdout.on('error', (error) => this.onerror?.(error));
    void proc.exited.then((exit) => {
      this.#exit = exit;
      this.#buffer.clear();
      if (!this.#closed) {
        this.#closed = true;
        this.onclose?.();
      }
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const proc = this.#process;
    if (proc === undefined || this.#closed) return Promise.reject(new Error('the MCP server is not running'));
    return new Promise((resolve, reject) => {
      const ok = proc.stdin.write(mcpSdk.stdio().serializeMessage(message), (error) => (error ? reject(error) : undefined));
      if (ok) resolve();
      else proc.stdin.once('drain', resolve);
    });
  }

  /** Kills the server's whole sandbox and waits until it is cleaned up. */
  async close(): Promise<void> {
    const proc = this.#process;
    if (proc === undefined) return;
    this.#exit = await proc.kill('killed');
    if (!this.#closed) {
      this.#closed = true;
      this.onclose?.();
    }
  }
}
