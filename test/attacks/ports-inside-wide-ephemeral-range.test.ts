/**
 * Attack on test/temporal/ports.ts (12bab86), whose ports "come from below the kernel's ephemeral
 * range" so that no outgoing connection can take one between the probe and the server's bind.
 * On a machine whose range starts low (`net.ipv4.ip_local_port_range = 1024 65535`, a common
 * tuning for hosts with many outgoing connections), `ephemeralRangeStart` does not take the value
 * (it is below 6400 + 10,000) and returns 32768, so every slice, 26368..32767, lies inside the
 * kernel's range: the race the change fixed is back, and nothing says so.
 * Fixed (test/temporal/ports.ts `testPortsStart`): the slices go above the range when there is no
 * room below it, and with room on neither side freePort refuses, naming the kernel setting.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, readFileSync: ((path: unknown, ...rest: unknown[]) => (path === '/proc/sys/net/ipv4/ip_local_port_range' ? '1024\t65535\n' : (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest))) as typeof fs.readFileSync };
});

describe('a kernel whose ephemeral range starts at 1024', () => {
  it('freePort hands out no port of the ephemeral range (or refuses, saying why)', async () => {
    const { freePort } = await import('../temporal/ports.js');
    let port: number;
    try {
      port = await freePort();
    } catch {
      return; // refusing is fine: no port below 1024 for an unprivileged server
    }
    expect(port < 1024 || port > 65535, `port ${port} is in the ephemeral range 1024..65535`).toBe(true);
  });
});
