/**
 * A program cannot make the worker hold connections without bound through its egress proxy
 * (attack s22 atk3: 8,000 connections from one program held 8,060 open files in the worker).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_EGRESS_CONNECTIONS, startEgressProxy, type EgressProxy } from '../../../sandbox/os/egress-proxy';

let dir: string | undefined;
let proxy: EgressProxy | undefined;
const clients: net.Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Opens `n` connections to `path` and resolves, once each is connected or closed, with those still open after `settleMs`. */
async function openMany(path: string, n: number, settleMs: number): Promise<number> {
  const open = new Set<net.Socket>();
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve) => {
        const socket = net.connect(path);
        clients.push(socket);
        socket.once('connect', () => {
          open.add(socket);
          resolve();
        });
        socket.once('close', () => {
          open.delete(socket);
          resolve();
        });
        socket.once('error', () => undefined);
      }),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return [...open].filter((s) => !s.destroyed && s.readyState === 'open').length;
}

describe('the egress proxy', () => {
  it.each([10, MAX_EGRESS_CONNECTIONS + 150])('of %s connections asked for, holds open no more than its cap', async (asked) => {
    dir = mkdtempSync(join(tmpdir(), 'warden-egress-cap-'));
    proxy = await startEgressProxy({ socketPath: join(dir, 'proxy.sock'), allowedHosts: [], tally: false });
    const held = await openMany(proxy.socketPath, asked, 300);
    expect(held).toBe(Math.min(asked, MAX_EGRESS_CONNECTIONS));
  });

  it('answers again once connections past the cap are closed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-egress-cap-'));
    proxy = await startEgressProxy({ socketPath: join(dir, 'proxy.sock'), allowedHosts: [], tally: false });
    await openMany(proxy.socketPath, MAX_EGRESS_CONNECTIONS, 100);
    for (const c of clients.splice(0)) c.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(proxy!.socketPath, () => socket.write('GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text.split('\r\n')[0]!);
        }
      });
      socket.on('error', reject);
    });
    // Not granted: refused by the proxy (so it read the request), never dropped.
    expect(answer).toMatch(/^HTTP\/1\.1 4\d\d/);
  });
});
