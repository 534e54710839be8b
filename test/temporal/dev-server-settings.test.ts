/**
 * The embedded dev server's dynamic config (temporal/dev-server-settings.ts): a server Warden
 * starts carries every setting on its command line, and a reused server started without them
 * (by an older Warden) is named in a note. Real servers on their own ports and state folders.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_SERVER_DYNAMIC_CONFIG, missingDevServerSettings, startDevDynamicConfigFlags } from '../../temporal/dev-server-settings';
import { ensureTemporalServer, stopEmbeddedServer } from '../../temporal/embedded-server';
import { findOrBuildTemporalCli } from '../../temporal/temporal-cli';
import { freeServerPorts } from './ports';

const ALL = Object.entries(DEV_SERVER_DYNAMIC_CONFIG).map(([key, value]) => `${key}=${value}`);

const created: string[] = [];
function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `warden-dev-settings-${name}-`));
  created.push(dir);
  return dir;
}
const stops: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

async function portsEnv(): Promise<NodeJS.ProcessEnv> {
  const { TEMPORAL_ADDRESS: _a, TEMPORAL_NAMESPACE: _n, WARDEN_TEMPORAL_HTTP_PORT: _h, TEMPORAL_CLI_PATH: _c, ...env } = process.env;
  return { ...env, ...(await freeServerPorts()) };
}

/** The `key=value` given right after each `--dynamic-config-value` in `argv`. */
function dynamicConfigOf(argv: readonly string[]): string[] {
  return argv.flatMap((arg, i) => (arg === '--dynamic-config-value' && i + 1 < argv.length ? [argv[i + 1] as string] : []));
}

function cmdlineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}

describe('the settings', () => {
  it('raise every history queue read rate a one-shard server pays per task (the default is 20 a second)', () => {
    expect(DEV_SERVER_DYNAMIC_CONFIG).toEqual({
      'history.transferProcessorMaxPollRPS': 1000,
      'history.timerProcessorMaxPollRPS': 1000,
      'history.visibilityProcessorMaxPollRPS': 1000,
    });
    expect(Object.isFrozen(DEV_SERVER_DYNAMIC_CONFIG)).toBe(true);
  });

  it('become one --dynamic-config-value pair each, values as JSON', () => {
    expect(startDevDynamicConfigFlags()).toEqual(ALL.flatMap((setting) => ['--dynamic-config-value', setting]));
  });

  it.each([
    ['every setting given', ['temporal', 'server', 'start-dev', ...startDevDynamicConfigFlags()], []],
    ['none given (a server an older Warden started)', ['temporal', 'server', 'start-dev', '--port', '7233'], ALL],
    ['one given', ['temporal', 'start-dev', '--dynamic-config-value', ALL[0] as string], ALL.slice(1)],
    ['one with another value', ['temporal', 'start-dev', ...startDevDynamicConfigFlags().slice(0, -1), 'history.visibilityProcessorMaxPollRPS=20'], [ALL[2]]],
    ['a setting not after the flag (an argument of something else)', ['temporal', 'start-dev', '--log-level', ALL[0] as string], ALL],
    ['the flag last, with no value', ['temporal', 'start-dev', '--dynamic-config-value'], ALL],
    ['unrelated dynamic config besides', ['temporal', 'start-dev', '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true', ...startDevDynamicConfigFlags()], []],
  ])('missing from a command line: %s', (_name, argv, missing) => {
    expect(missingDevServerSettings(argv)).toEqual(missing);
  });
});

describe.skipIf(process.platform !== 'linux')('a real embedded server', () => {
  it('started by Warden carries every setting on its command line and reuse notes nothing', async () => {
    const env = await portsEnv();
    const dir = tempDir('fresh');
    stops.push(() => stopEmbeddedServer(dir));
    const started = await ensureTemporalServer({ env, stateDir: dir, log: () => {} });
    expect(started).toMatchObject({ started: true });
    expect(dynamicConfigOf(cmdlineOf(started.pid!))).toEqual(expect.arrayContaining(ALL));
    expect(missingDevServerSettings(cmdlineOf(started.pid!))).toEqual([]);

    const logs: string[] = [];
    const reused = await ensureTemporalServer({ env, stateDir: dir, log: (line) => logs.push(line) });
    expect(reused).toMatchObject({ reused: true, pid: started.pid });
    expect(logs.filter((line) => line.includes('started without'))).toEqual([]);
  });

  it('started without them (as an older Warden did) is reused as is, with a note naming what it lacks', async () => {
    const env = await portsEnv();
    const cli = await findOrBuildTemporalCli({ env });
    // The real CLI, minus every --dynamic-config-value pair: the command line an older Warden gave it.
    const bin = tempDir('oldcli');
    const wrapper = join(bin, 'temporal');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nskip=0\nfor a do\n  shift\n  if [ "$skip" = 1 ]; then skip=0; continue; fi\n  if [ "$a" = --dynamic-config-value ]; then skip=1; continue; fi\n  set -- "$@" "$a"\ndone\nexec ${JSON.stringify(cli)} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const dir = tempDir('old');
    stops.push(() => stopEmbeddedServer(dir));
    const started = await ensureTemporalServer({ env: { ...env, TEMPORAL_CLI_PATH: wrapper }, stateDir: dir, log: () => {} });
    expect(dynamicConfigOf(cmdlineOf(started.pid!))).toEqual([]);

    const logs: string[] = [];
    const reused = await ensureTemporalServer({ env, stateDir: dir, log: (line) => logs.push(line) });
    expect(reused).toMatchObject({ reused: true, pid: started.pid });
    const notes = logs.filter((line) => line.includes('started without'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`the Temporal server (pid ${started.pid}) was started without ${ALL.join(', ')}`);
    expect(notes[0]).toContain('warden server stop');
  });
});
