/**
 * Attack: resource exhaustion through the workspace overlay. A program's writes land in the task
 * tree's upper folder, on the file system of Warden's state folder (the host's disk). Its limits
 * bound memory, processes, CPU, wall time and the size of one file (RLIMIT_FSIZE, 256 MiB), but
 * nothing bounds the sum: a granted program (or a stdio MCP server, for the whole task) fills the
 * host disk 256 MiB at a time, and with it the state folder Warden's ledger and databases live in.
 *
 * Expected: a bound on what one task tree may write to its overlay (a disk quota, or a limit the
 * task file sets), enforced while the program runs. The test uses the per-file limit as the
 * stand-in for that bound; fallocate makes the blocks real without slow I/O.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';
import { makeTempDir } from '../../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

const PER_FILE_LIMIT_MB = 256;

describe('disk use of a program', () => {
  it('is bounded for the task, not only per file', async () => {
    const workspace = makeTempDir('disk-fill');
    fs.writeFileSync(path.join(workspace, 'a.txt'), 'a');
    // Five files just under the per-file limit: 1000 MiB of real blocks on the host's disk.
    const fill = 'for i in 1 2 3 4 5; do fallocate -l 200M fill-$i || break; done; du -cm fill-* | tail -1 | cut -f1';
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'build the project',
      agent: {
        name: 'builder',
        model: {
          driver: 'scripted',
          // The task is then denied, so its overlay (and the 1000 MiB) is discarded after the test.
          script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', fill] } }, { tool: 'fs.read', args: { path: 'a.txt' } }, { final: 'never' }],
        },
      },
      tools: { builtin: ['proc.run', 'fs.read'] },
      grants: { tools: ['proc.run'], commands: ['sh'] },
      resources: { workspace },
      limits: { toolTimeout: '60s' },
    });
    const output = result.steps[0]?.output as { stdout: string; stderr: string; exitCode: number };
    expect(output, JSON.stringify(result.steps[0])).toBeDefined();
    const writtenMb = Number(output.stdout.trim());
    expect(writtenMb, `the program wrote ${writtenMb} MiB to the host disk through the overlay (stderr: ${output.stderr.trim()})`).toBeLessThanOrEqual(PER_FILE_LIMIT_MB);
  });
});
