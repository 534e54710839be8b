/**
 * Files that make tools on the host run code later, on commands that do not ask for it: the OS
 * sandbox contains a program while it runs, but what it writes to the workspace is committed to
 * the real workspace, where the user's own git, package manager, editor or shell reads it
 * outside every sandbox (e.g. `core.fsmonitor` in `.git/config` runs on the next `git status`).
 *
 * A commit never makes these real unless the task file names them in
 * `resources.allowHostCode`: they are held (copied to `<stateDir>/held/<taskKey>/` for review)
 * and reported in the task result's `recovery.notCommitted`. Deleting such a file is committed
 * (deleting runs nothing). Matching is case-insensitive (workspaces on case-insensitive file
 * systems).
 *
 * Files under the workspace repository's `core.hooksPath` folder are held too (workspace-overlay.ts).
 * The list is documented in recovery/README.md ("Files that run code on the host"); keep both in
 * step. Source files the user runs on purpose (Makefile, package.json scripts, tests) are the
 * task's output and are not on it.
 */

export interface HostCodeRule {
  /** Tested against the workspace-relative, `/`-separated path. */
  pattern: RegExp;
  /** Which host tool runs what, for the task result. */
  why: string;
}

/** The documented list, in the order it is checked. */
export const HOST_CODE_RULES: readonly HostCodeRule[] = [
  // git: config (core.fsmonitor, core.pager, core.sshCommand, alias.*, filters...), hooks, and
  // what redirects git to another repository's config (a `.git` file, commondir), at any depth
  // (nested repositories, submodules under .git/modules).
  { pattern: /(^|\/)\.git$/i, why: 'a .git file redirects git to another repository and its config' },
  { pattern: /(^|\/)\.git\/(.+\/)?(config|config\.worktree|commondir)$/i, why: 'git runs commands named in repository config (core.fsmonitor on git status, core.pager, aliases, filters)' },
  { pattern: /(^|\/)\.git\/(.+\/)?hooks\//i, why: 'git runs hooks on commit, checkout, merge, push' },
  { pattern: /(^|\/)\.husky\//i, why: 'husky points git hooks at this folder' },
  { pattern: /(^|\/)\.pre-commit-config\.ya?ml$/i, why: 'pre-commit runs the programs it lists on git commit' },
  // Package managers: code run on any command in the folder.
  { pattern: /(^|\/)\.yarnrc(\.ya?ml)?$/i, why: 'yarn runs the program named by yarnPath / yarn-path on every command' },
  { pattern: /(^|\/)\.npmrc$/i, why: 'npm reads node-options, script-shell and git from it' },
  { pattern: /(^|\/)\.pnpmfile\.c?js$/i, why: 'pnpm runs it on install' },
  // Python: site-packages .pth lines and sitecustomize run on every interpreter start.
  { pattern: /\.pth$/i, why: 'python runs import lines of .pth files in site-packages on every start' },
  { pattern: /(^|\/)(sitecustomize|usercustomize)\.py$/i, why: 'python imports it on every start' },
  // Shell and editors: code run on entering the folder or opening it.
  { pattern: /(^|\/)\.envrc$/i, why: 'direnv runs it on entering the folder' },
  { pattern: /(^|\/)\.?mise(\.local)?\.toml$/i, why: 'mise runs its hooks and env scripts on entering the folder' },
  { pattern: /(^|\/)\.vscode\/(settings|tasks)\.json$/i, why: 'the editor runs tasks on folder open and programs named in settings' },
  { pattern: /(^|\/)\.devcontainer(\/[^/]+)?\.json$|(^|\/)\.devcontainer\/devcontainer\.json$/i, why: 'devcontainer initializeCommand runs on the host when the folder is opened' },
];

/** Why `path` (workspace-relative, `/`-separated) would run code on the host, or undefined. */
export function hostCodeReasonOf(path: string): string | undefined {
  return HOST_CODE_RULES.find((rule) => rule.pattern.test(path))?.why;
}

/** Why a bare repository's `config` (a sibling `HEAD` exists) runs code: git finds bare repositories on `cd`. */
export const BARE_REPOSITORY_CONFIG = 'git runs commands named in the config of a bare repository found in the current folder';

/**
 * Whether `resources.allowHostCode` lets the task commit `path`: an entry names the path itself,
 * or a folder it is under when the entry ends with `/`.
 */
export function hostCodeAllowed(path: string, allow: readonly string[] | undefined): boolean {
  if (allow === undefined) return false;
  return allow.some((entry) => (entry.endsWith('/') ? path.startsWith(entry) : path === entry));
}
