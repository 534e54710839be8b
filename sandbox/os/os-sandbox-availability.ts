/**
 * Whether a task needs the OS sandbox, and what keeps it from working here. Apart from
 * sandboxed-process.ts (which re-exports both) so that `warden run` and `warden mcp serve` can
 * check a task before it starts without loading the sandbox's runtime (egress proxy, cgroups,
 * spec schemas).
 */
import { spawnSync } from 'node:child_process';

/** Whether a task needs the OS sandbox: it declares `proc.run` or a stdio MCP server. */
export function taskNeedsOsSandbox(task: { tools: { builtin: readonly string[]; mcp?: Record<string, object> | undefined } }): boolean {
  return task.tools.builtin.includes('proc.run') || Object.values(task.tools.mcp ?? {}).some((server) => 'command' in server);
}

/** What keeps the OS sandbox from working with the programs on `env.PATH`, or undefined when it works. */
export function osSandboxProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const has = (tool: string) => spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { PATH: env.PATH ?? '' } }).status === 0;
  if (!has('bwrap')) {
    return 'bubblewrap is not installed (no "bwrap" on PATH): programs and stdio MCP servers run only in its OS sandbox. Install it with: apt-get install -y bubblewrap';
  }
  const missing = ['unshare', 'prlimit', 'mount', 'nsenter'].filter((tool) => !has(tool));
  if (missing.length > 0) return `the OS sandbox needs ${missing.join(', ')} (Debian packages util-linux and mount)`;
  const probe = spawnSync('bwrap', ['--unshare-all', '--unshare-user', '--die-with-parent', '--ro-bind', '/', '/', '--', '/bin/true'], {
    encoding: 'utf8',
    env: { PATH: env.PATH ?? '' },
  });
  if (probe.status === 0) return undefined;
  const why = (probe.stderr || probe.error?.message || `exit ${probe.status}`).trim();
  return `bubblewrap cannot create namespaces here (${why}); user namespaces may be disabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)`;
}
