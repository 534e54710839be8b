/** `warden approvers add|list|remove`, and what `warden approve` says without a key. */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { approveCommand } from '../../cli/commands/approvals';
import { approversCommand } from '../../cli/commands/approvers';
import type { CliIo } from '../../cli/cli-io';
import { ApproverKeyFileSchema } from '../../identity/approval-decision';

function cli(env: NodeJS.ProcessEnv): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, out, err };
}

describe('warden approvers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-approvers-cli-'));
  const env = { WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_APPROVER_DIR: join(dir, 'keys') };

  it('adds an approver: a 0600 key file in the approver folder, the public key registered', async () => {
    const io = cli(env);
    expect(await approversCommand(['add', 'alice'], io)).toBe(0);
    const file = join(dir, 'keys', 'alice.json');
    expect(io.out.join('')).toContain(`key file: ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = ApproverKeyFileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    const list = cli(env);
    expect(await approversCommand(['list', '--json'], list)).toBe(0);
    expect(JSON.parse(list.out.join(''))).toEqual([expect.objectContaining({ name: 'alice', kid: key.kid, keyFile: file })]);
    // The registry has the public key only.
    expect(list.out.join('')).not.toContain(key.privateJwk.d);
  });

  it.each([
    [['add', 'alice'], 2, /already registered/],
    [['add', 'Alice Smith', '--out', join(dir, 'x.json')], 2, /not an approver name|ERR_APPROVER_INVALID/],
    [['add'], 2, /expected add <name>/],
    [['remove', 'nobody'], 1, /no approver named "nobody"/],
    [['list', 'extra'], 2, /list takes no argument \(got "extra"\)/],
  ] as const)('%j exits %i', async (argv, code, message) => {
    const io = cli(env);
    expect(await approversCommand([...argv], io)).toBe(code);
    expect(io.err.join('')).toMatch(message);
  });

  it('removes an approver; the list says so', async () => {
    expect(await approversCommand(['remove', 'alice'], cli(env))).toBe(0);
    const list = cli(env);
    await approversCommand(['list'], list);
    expect(list.out.join('')).toMatch(/alice .* removed /);
  });

  it('approve without a key explains how to get one (exit 2) and contacts nothing', async () => {
    const io = cli({ WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TEMPORAL_PORT: '1' });
    expect(await approveCommand(['wf', 'req'], io)).toBe(2);
    expect(io.err.join('')).toMatch(/ERR_APPROVER_INVALID: no approver key: pass --key <file>/);
    const missing = cli({ WARDEN_STATE_DIR: join(dir, 'state') });
    expect(await approveCommand(['wf', 'req', '--key', join(dir, 'nope.json')], missing)).toBe(2);
    expect(missing.err.join('')).toMatch(/cannot read the approver key file .*nope\.json/);
  });
});
