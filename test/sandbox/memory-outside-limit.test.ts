/**
 * A tool call's memory stays within its `memoryMb`, whatever kind of memory it asks for
 * (attack s22 atk3: WebAssembly memory is allocated by V8 outside isolated-vm's allocator, so the
 * isolate's limit never saw it; a 32 MiB call took 1-2 GiB of the shared sandbox host, kept after
 * the call). Each row asks for 1 GiB, 32 times the call's limit, through one kind of allocation,
 * touching every page; the call must fail, and the host must not keep the memory.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { codeOf, toolCall } from './sandbox-test-kit';

let client: SandboxClient;
beforeAll(async () => {
  client = await SandboxClient.start();
});
afterAll(async () => client?.close());

function hostRssMb(): number {
  const pid = (client as unknown as { pid?: number }).pid;
  const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

const GIB_IN_QUARTERS = (make: string) => `
  const keep = [];
  for (let i = 0; i < 4; i += 1) { const view = ${make}; view.fill(1); keep.push(view); }
  return keep.length * 256;`;

describe('a call asking for 1 GiB at memoryMb 32', () => {
  it.each([
    ['ArrayBuffer', GIB_IN_QUARTERS('new Uint8Array(new ArrayBuffer(256 * 1024 * 1024))')],
    ['typed array', GIB_IN_QUARTERS('new Uint8Array(256 * 1024 * 1024)')],
    ['WebAssembly.Memory', GIB_IN_QUARTERS('new Uint8Array(new WebAssembly.Memory({ initial: 4096 }).buffer)')],
    ['WebAssembly.Memory grown', GIB_IN_QUARTERS('(() => { const m = new WebAssembly.Memory({ initial: 1, maximum: 4096 }); m.grow(4095); return new Uint8Array(m.buffer); })()')],
    ['SharedArrayBuffer', GIB_IN_QUARTERS('new Uint8Array(new SharedArrayBuffer(256 * 1024 * 1024))')],
    ['resizable ArrayBuffer', GIB_IN_QUARTERS('(() => { const b = new ArrayBuffer(1, { maxByteLength: 256 * 1024 * 1024 }); b.resize(256 * 1024 * 1024); return new Uint8Array(b); })()')],
    ['ArrayBuffer transfer to a larger length', GIB_IN_QUARTERS('new Uint8Array(new ArrayBuffer(1).transfer(256 * 1024 * 1024))')],
    ['growable SharedArrayBuffer', GIB_IN_QUARTERS('(() => { const b = new SharedArrayBuffer(1, { maxByteLength: 256 * 1024 * 1024 }); b.grow(256 * 1024 * 1024); return new Uint8Array(b); })()')],
  ])('through %s fails, and the host keeps none of it', async (_kind, source) => {
    const before = hostRssMb();
    const response = await client.run(toolCall(source, null, {}, { memoryMb: 32, timeoutMs: 30_000 }));
    // A later call on the same host: the memory of the one before must not stay behind.
    await client.run(toolCall('return 1;', null, {}, { memoryMb: 32 }));
    const keptMb = Math.round(hostRssMb() - before);
    expect({ ok: response.ok, code: codeOf(response), keptUnder256Mb: keptMb < 256 }).toEqual({ ok: false, code: expect.stringMatching(/^ERR_(SANDBOX_MEMORY|TOOL_THREW)$/), keptUnder256Mb: true });
  });
});
