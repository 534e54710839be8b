/**
 * What one program run in the OS sandbox may see and use. Everything a run gets is spelled out
 * here and validated before any process starts: there is no ambient access to widen.
 */
import { z } from 'zod';
import { HostGrantEntrySchema } from '../sandbox-messages';

/** Where the task's workspace appears inside every sandbox. */
export const SANDBOX_WORKSPACE = '/workspace';
/** HOME inside the sandbox: an empty private tmpfs. */
export const SANDBOX_HOME = '/home/sandbox';
/** Loopback port inside the sandbox on which the egress proxy is reachable (HTTP_PROXY). */
export const SANDBOX_PROXY_PORT = 3128;

const EnvNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

export const OsSandboxLimitsSchema = z.strictObject({
  /** Wall-clock time of the whole run, in ms; the process tree is killed after it. */
  wallTimeMs: z.number().int().positive(),
  /** CPU time of the whole process tree, in ms (per process too, as RLIMIT_CPU). */
  cpuTimeMs: z.number().int().positive(),
  /** Memory of the whole process tree (cgroup), or of each process (RLIMIT_DATA) without cgroups. */
  memoryMb: z.number().int().min(16).max(65_536),
  /** Processes and threads alive at once in the tree. */
  maxProcesses: z.number().int().min(1).max(4096),
  /** Largest file a process may write (RLIMIT_FSIZE), in MiB. */
  maxFileMb: z.number().int().min(1).max(65_536).default(256),
});
export type OsSandboxLimits = z.infer<typeof OsSandboxLimitsSchema>;

/**
 * Warden's own resources and the task's controls (sandbox/capabilities/protected-guard.ts): a
 * workspace that is, lies in or contains a protected folder or file, or sits on a kernel file
 * system, is never mounted; read-only items inside it are mounted read-only over the workspace.
 */
export const OsSandboxProtectedSchema = z.strictObject({
  folders: z.array(z.string().startsWith('/')).default([]),
  files: z.array(z.string().startsWith('/')).default([]),
  readOnly: z.array(z.string().startsWith('/')).default([]),
});

export const OsSandboxWorkspaceSchema = z.discriminatedUnion('mode', [
  /** Reads see the workspace plus the task's earlier writes; writes land in the overlay's `upper/`. */
  z.strictObject({
    mode: z.literal('overlay'),
    /** Real path of the workspace (the lower layer, never written). */
    root: z.string().startsWith('/'),
    /** The task tree's overlay folder (`<stateDir>/overlays/<taskKey>`), holding `upper/`. */
    overlayDir: z.string().startsWith('/'),
    protected: OsSandboxProtectedSchema.optional(),
  }),
  /** The workspace read-only. */
  z.strictObject({ mode: z.literal('read-only'), root: z.string().startsWith('/'), protected: OsSandboxProtectedSchema.optional() }),
]);
export type OsSandboxWorkspace = z.infer<typeof OsSandboxWorkspaceSchema>;

export const OsSandboxSpecSchema = z.strictObject({
  /** A program name looked up on the sandbox's PATH (read-only system folders), or an absolute path inside the sandbox. */
  command: z.string().min(1).refine((c) => !c.includes('\u0000'), 'no NUL bytes'),
  args: z.array(z.string().refine((a) => !a.includes('\u0000'), 'no NUL bytes')).max(4096).default([]),
  /** Working folder, relative to the workspace (`.` by default); without a workspace the private /tmp. */
  cwd: z.string().default('.'),
  /** The whole environment of the program besides PATH, HOME, TMPDIR, LANG and the proxy variables. */
  env: z.record(EnvNameSchema, z.string()).default({}),
  workspace: OsSandboxWorkspaceSchema.optional(),
  /** Extra host folders shown read-only (e.g. installed MCP server packages), at the same path. */
  readOnlyPaths: z.array(z.string().startsWith('/')).default([]),
  /** Folders whose `bin` (or the folder itself) goes first on PATH. */
  pathPrepend: z.array(z.string().startsWith('/')).default([]),
  /**
   * The only programs the run may execute (absolute host paths, e.g. what `grants.commands`
   * resolves to), plus their `#!` interpreters and their packages' own helpers
   * (`program-view.ts`); writable places and the workspace are then mounted noexec. Absent: every
   * program of the shown system (stdio MCP servers).
   */
  programs: z.array(z.string().startsWith('/')).optional(),
  /** Hosts reachable through the egress proxy; empty or absent: no network at all. */
  allowedHosts: z.array(HostGrantEntrySchema).default([]),
  limits: OsSandboxLimitsSchema,
});
export type OsSandboxSpec = z.infer<typeof OsSandboxSpecSchema>;
export type OsSandboxSpecInput = z.input<typeof OsSandboxSpecSchema>;
