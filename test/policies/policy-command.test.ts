/** `warden policy compile`: prints what each rule became; an unreadable rule exits 2 with the parse error. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { policyCommand } from '../../cli/commands/policy';
import { EXIT } from '../../cli/exit-codes';
import { PACKS_DIR } from '../../policies/engine/load-pack';

function capture(): CliIo & { out: string; err: string } {
  const io = { out: '', err: '', env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-policy-cli-'));
});

describe('warden policy compile', () => {
  it('compiles a sentence given on the command line to Cedar', async () => {
    const io = capture();
    expect(await policyCommand(['compile', 'never delete more than 10 rows without explicit approval'], io)).toBe(EXIT.ok);
    expect(io.out).toContain('cedar rule (limit), decides: approval');
    expect(io.out).toContain('forbid (principal, action == Warden::Action::"call", resource)');
    expect(io.out).toContain('context.rows > 10');
  });

  it('shows the spec of a stateful rule', async () => {
    const io = capture();
    expect(await policyCommand(['compile', 'never', 'make', 'more', 'than', '20', 'calls', 'per', 'minute'], io)).toBe(EXIT.ok);
    expect(io.out).toContain('stateful rule (rate), decides: deny');
    expect(io.out).toContain('"windowMs": 60000');
  });

  it('compiles a pack folder with the packs it extends, as JSON', async () => {
    const io = capture();
    expect(await policyCommand(['compile', join(PACKS_DIR, 'enterprise'), '--json'], io)).toBe(EXIT.ok);
    const rules = JSON.parse(io.out) as { id: string; kind: string }[];
    expect(rules.some((r) => r.id.startsWith('foundation:'))).toBe(true);
    expect(rules.some((r) => r.id.startsWith('enterprise:') && r.kind === 'stateful')).toBe(true);
  });

  it('compiles a bundled pack by name and a task file\'s policies', async () => {
    const io = capture();
    expect(await policyCommand(['compile', 'advanced'], io)).toBe(EXIT.ok);
    expect(io.out).toContain('advanced:');
    const task = join(dir, 'task.yaml');
    await writeFile(task, 'user: a\nintent: b\npolicies:\n  - never spend over $100\n');
    const io2 = capture();
    expect(await policyCommand(['compile', task], io2)).toBe(EXIT.ok);
    expect(io2.out).toContain('task:1  never spend over $100');
  });

  it('an unreadable rule exits 2 with the file, line, caret and suggestions', async () => {
    const file = join(dir, 'rules.txt');
    await writeFile(file, '# mine\nallow fs.read\nnever delet more than 10 rows\n');
    const io = capture();
    expect(await policyCommand(['compile', file], io)).toBe(EXIT.usage);
    expect(io.out).toBe('');
    expect(io.err).toContain('ERR_POLICY_UNREADABLE');
    expect(io.err).toContain('rules.txt:3');
    expect(io.err).toContain('        ^^^^^');
    expect(io.err).toContain('never delete more than <n> rows');
    expect(io.err).toContain('1 of 2 rule(s) could not be compiled');
  });

  it('bad usage exits 2', async () => {
    const io = capture();
    expect(await policyCommand([], io)).toBe(EXIT.usage);
    expect(await policyCommand(['frobnicate', 'x'], io)).toBe(EXIT.usage);
    expect(await policyCommand(['compile', './missing/rules.txt'], io)).toBe(EXIT.usage);
    expect(io.err).toContain('ERR_POLICY_PACK_NOT_FOUND');
  });
});
