/**
 * A missing or unusable approver key is the user's input gone wrong, so every command that signs
 * with one exits 2 and names the file, before it reaches any server (`warden kill` exited 1 where
 * `approve`, `deny` and `console` exited 2).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { approveCommand, denyCommand } from '../../cli/commands/approvals';
import { consoleCommand } from '../../cli/commands/console';
import { killCommand } from '../../cli/commands/kill';

const dir = mkdtempSync(join(tmpdir(), 'warden-approver-key-exit-'));
const notAKey = join(dir, 'not-a-key.json');
writeFileSync(notAKey, '{"hello":"world"}');
const notJson = join(dir, 'not-json.json');
writeFileSync(notJson, 'key: value');

const commands: [string, (argv: string[], io: CliIo) => Promise<number>, string[]][] = [
  ['kill', killCommand, ['task-1']],
  ['approve', approveCommand, ['task-1', 'request-1']],
  ['deny', denyCommand, ['task-1', 'request-1']],
  ['console', consoleCommand, []],
];
const keys: [string, string[], RegExp][] = [
  ['no key at all', [], /ERR_APPROVER_INVALID: no approver key: pass --key <file>/],
  ['a key file that does not exist', ['--key', join(dir, 'none.json')], /ERR_APPROVER_INVALID: cannot read the approver key file .*none\.json/],
  ['a JSON file that is not a key', ['--key', notAKey], /ERR_APPROVER_INVALID: .*not-a-key\.json is not an approver key file/],
  ['a file that is not JSON', ['--key', notJson], /ERR_APPROVER_INVALID: .*not-json\.json is not an approver key file \(not JSON at line \d+, column \d+\)/],
];

describe.each(commands)('warden %s', (name, command, positionals) => {
  // The console without a key is a read-only console: only a key it was given must be usable.
  it.each(name === 'console' ? keys.filter(([, keyArgs]) => keyArgs.length > 0) : keys)('with %s exits 2 naming what is wrong, writing nothing to stdout', async (_what, keyArgs, message) => {
    let out = '';
    let err = '';
    // No server is reachable at this address: the key is checked before any connection.
    const env = { WARDEN_APPROVER_DIR: join(dir, 'no-approvers'), TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const code = await command([...positionals, ...keyArgs], { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env });
    expect(err).toMatch(message);
    expect(code).toBe(2);
    expect(out).toBe('');
  }, 60_000);
});
