/** `warden mcp …` and the OS-sandbox preflight of `warden run`: usage errors and clear refusals. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

function io(env: NodeJS.ProcessEnv = process.env): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, out: () => out, err: () => err };
}

function taskFile(document: Record<string, unknown>): string {
  const dir = makeTempDir('cli-mcp');
  const file = path.join(dir, 'task.json');
  fs.writeFileSync(file, JSON.stringify({ user: 'u@example.com', intent: 'do it', resources: { workspace: dir }, ...document }));
  return file;
}

const PROC_TASK = {
  agent: { name: 'runner', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
  tools: { builtin: ['proc.run'] },
  grants: { tools: ['proc.run'], commands: ['node'] },
};

describe('warden mcp', () => {
  it.each([[[]], [['bogus']], [['serve']], [['install']], [['install', 'Not A Package']], [['serve', 'a.yaml', '--port', '80']]])('%j is a usage error (exit 2)', async (argv) => {
    const cli = io();
    expect(await main(['mcp', ...argv], cli)).toBe(2);
    expect(cli.err()).toMatch(/warden mcp/);
  });

  it('serve refuses a task whose agent is not the MCP client', async () => {
    const cli = io();
    expect(await main(['mcp', 'serve', taskFile(PROC_TASK)], cli)).toBe(2);
    expect(cli.err()).toMatch(/agent\.model\.driver must be "mcp-client"/);
  });

  it.each([
    [['--no-auth'], /--no-auth need --http/],
    [['--http', '--no-auth', '--token-env', 'WARDEN_TEST_TOKEN'], /exclude each other/],
    [['--http', '--token-env', 'WARDEN_TEST_TOKEN'], /at least 16 characters/],
  ])('serve %j is a usage error: the HTTP transport is authenticated unless opted out explicitly', async (flags, message) => {
    const cli = io({ ...process.env, WARDEN_TEST_TOKEN: 'short' });
    const file = taskFile({ agent: { name: 'ide', model: { driver: 'mcp-client' } }, tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] } });
    expect(await main(['mcp', 'serve', file, ...flags], cli)).toBe(2);
    expect(cli.err()).toMatch(message);
  });

  it('run refuses an mcp-client task and names the command to use', async () => {
    const cli = io();
    const file = taskFile({ agent: { name: 'ide', model: { driver: 'mcp-client' } } });
    expect(await main(['run', file], cli)).toBe(2);
    expect(cli.err()).toContain(`warden mcp serve ${file}`);
  });

  it.each([['run'], ['mcp', 'serve']])('%s names bubblewrap and how to install it when bwrap is missing', async (...command) => {
    const cli = io({ ...process.env, PATH: makeTempDir('no-bwrap') });
    const file = taskFile(command[0] === 'run' ? PROC_TASK : { ...PROC_TASK, agent: { name: 'ide', model: { driver: 'mcp-client' } } });
    expect(await main([...command, file], cli)).toBe(1);
    expect(cli.err()).toMatch(/ERR_OS_SANDBOX_UNAVAILABLE: .*proc\.run.*apt-get install -y bubblewrap/);
  });
});
