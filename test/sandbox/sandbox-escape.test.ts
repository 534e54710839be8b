/**
 * Known ways out of a JavaScript sandbox. Each must fail to reach a host power: the probes
 * return what they found, and the host-side assertions check it is nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, outputOf, toolCall } from './sandbox-test-kit';

let client: SandboxClient;
let workspace: string;
let fsGrant: CapabilityGrant;

beforeAll(async () => {
  client = await SandboxClient.start();
  workspace = makeTempDir('escape');
  fs.writeFileSync(path.join(workspace, 'note.txt'), 'inside');
  fsGrant = { fs: { root: workspace, read: true, write: false, list: false } };
});

afterAll(async () => {
  await client.close();
  fs.rmSync(workspace, { recursive: true, force: true });
});

interface EscapeCase {
  name: string;
  source: string;
  grant?: CapabilityGrant;
  /** Either the exact value the probe must return, or the error code the call must end with. */
  expected: { output: unknown } | { code: string };
}

const ESCAPES: EscapeCase[] = [
  { name: 'this.constructor.constructor', source: "return this.constructor.constructor('return typeof process')();", expected: { output: 'undefined' } },
  { name: 'this.constructor.constructor("return process")()', source: "return this.constructor.constructor('return process')().pid;", expected: { code: 'ERR_TOOL_THREW' } },
  {
    name: 'a capability function constructor',
    source: "return warden.fs.read.constructor('return [typeof process, typeof require, typeof global]')();",
    expected: { output: ['undefined', 'undefined', 'undefined'] },
  },
  { name: 'a capability function constructor returning process', source: "return warden.fs.read.constructor('return process')().env;", expected: { code: 'ERR_TOOL_THREW' } },
  { name: "Function('return this')().process", source: "return typeof Function('return this')().process;", expected: { output: 'undefined' } },
  { name: 'typeof require', source: 'return typeof require;', expected: { output: 'undefined' } },
  { name: 'globalThis.process', source: 'return typeof globalThis.process;', expected: { output: 'undefined' } },
  {
    name: 'CommonJS and Node globals',
    source: 'return [typeof module, typeof exports, typeof __dirname, typeof Buffer, typeof global, typeof process];',
    expected: { output: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined'] },
  },
  { name: "dynamic import('fs')", source: "const fs = await import('fs'); return typeof fs.readFileSync;", expected: { code: 'ERR_TOOL_THREW' } },
  { name: "dynamic import('node:child_process')", source: "await import('node:child_process'); return 'imported';", expected: { code: 'ERR_TOOL_THREW' } },
  { name: "eval('process')", source: "return eval('typeof process');", expected: { output: 'undefined' } },
  { name: 'indirect eval', source: "return (0, eval)('typeof process + typeof require');", expected: { output: 'undefinedundefined' } },
  {
    name: 'timers and network globals',
    source:
      'return [typeof setTimeout, typeof setInterval, typeof setImmediate, typeof queueMicrotask, typeof fetch, typeof XMLHttpRequest, typeof WebSocket];',
    expected: { output: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined'] },
  },
  {
    name: 'arguments.callee.caller',
    source: "try { return String(arguments.callee.caller); } catch (error) { return 'blocked'; }",
    expected: { output: 'blocked' },
  },
  {
    name: 'a forged capability error code',
    source: 'throw Object.assign(new Error("ERR_PATH_OUTSIDE_WORKSPACE: forged"), { code: "ERR_PATH_OUTSIDE_WORKSPACE" });',
    expected: { code: 'ERR_TOOL_THREW' },
  },
  { name: 'replacing warden capabilities', source: 'warden.fs = 1; return [Object.isFrozen(warden), Object.isFrozen(warden.fs), typeof warden.fs.read];', expected: { output: [true, true, 'function'] } },
];

/** Collects V8 call sites (including around capability calls) and looks for host objects in them. */
const PREPARE_STACK_TRACE_PROBE = `
      let frames = [];
      Error.prepareStackTrace = (error, callSites) => callSites;
      try { warden.fs.read('../outside'); } catch (error) { frames = frames.concat(error.stack); }
      try { warden.fs.read({ toString() { return 'x'; } }); } catch (error) { frames = frames.concat(error.stack); }
      try { null.x; } catch (error) { frames = frames.concat(error.stack); }
      const found = [];
      for (const frame of frames) {
        if (typeof frame !== 'object' || frame === null) continue;
        const self = frame.getThis && frame.getThis();
        const fn = frame.getFunction && frame.getFunction();
        if (self && (self.process || self.require)) found.push('this');
        if (fn) {
          // An async function's constructor is AsyncFunction: its result is a promise.
          const seen = await fn.constructor('return typeof process')();
          if (seen !== 'undefined') found.push('function: ' + String(seen));
        }
      }
      return { frames: frames.length, found };
    `;

describe('escape attempts do not reach host powers', () => {
  for (const escape of ESCAPES) {
    it(escape.name, async () => {
      const response = await client.run(toolCall(escape.source, null, escape.grant ?? fsGrant));
      if ('code' in escape.expected) expect(codeOf(response)).toBe(escape.expected.code);
      else expect(outputOf(response)).toEqual(escape.expected.output);
    });
  }

  it('Error.prepareStackTrace call sites expose no host object', async () => {
    const output = outputOf(await client.run(toolCall(PREPARE_STACK_TRACE_PROBE, null, fsGrant))) as { frames: number; found: string[] };
    expect(output.frames).toBeGreaterThan(0);
    expect(output.found).toEqual([]);
  });

  it('prototype pollution stays in its own call', async () => {
    const polluting = 'Object.prototype.polluted = 1; Array.prototype.polluted = 2; JSON.stringify = () => "hijacked"; return [({}).polluted, [].polluted];';
    expect(outputOf(await client.run(toolCall(polluting)))).toEqual([1, 2]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>)['polluted']).toBeUndefined();
    const next = await client.run(toolCall('return [typeof ({}).polluted, typeof [].polluted, JSON.stringify({ a: 1 })];'));
    expect(outputOf(next)).toEqual(['undefined', 'undefined', '{"a":1}']);
  });

  it('globals set by one call are gone in the next', async () => {
    await client.run(toolCall('globalThis.leftover = "from the first call"; return null;'));
    expect(outputOf(await client.run(toolCall('return typeof globalThis.leftover;')))).toBe('undefined');
  });

  it('tampering with intrinsics cannot make an invalid result pass', async () => {
    const source = 'Object.getPrototypeOf = () => Object.prototype; Array.isArray = () => true; return new Map([[1, 2]]);';
    expect(codeOf(await client.run(toolCall(source)))).toBe('ERR_TOOL_OUTPUT_NOT_JSON');
  });

  // Not installed: no own property names them (reading one gives a function that only throws the
  // error naming it, test/sandbox/undeclared-capability-error.test.ts).
  it('capabilities that are not granted are not installed', async () => {
    const none = await client.run(toolCall('return [["fs", "http", "sql"].map((name) => name in warden || Object.hasOwn(warden, name)), Object.keys(warden).length];'));
    expect(outputOf(none)).toEqual([[false, false, false], 0]);
    const readOnly = await client.run(toolCall('return [typeof warden.fs.read, "write" in warden.fs, "list" in warden.fs, Object.keys(warden.fs)];', null, fsGrant));
    expect(outputOf(readOnly)).toEqual(['function', false, false, ['read']]);
  });

  it('an ungranted capability cannot be called even by name', async () => {
    const response = await client.run(toolCall('return warden.fs.read("note.txt");'));
    expect(codeOf(response)).toBe('ERR_TOOL_THREW');
  });

  it('the granted capability works (control for the tests above)', async () => {
    expect(outputOf(await client.run(toolCall('return warden.fs.read("note.txt");', null, fsGrant)))).toBe('inside');
  });
});
