/**
 * Built-in tools that run programs in the OS sandbox (`process` executor, executors/process-executor.ts).
 * `proc.run` is granted twice: the tool in `grants.tools`, and each program by name in
 * `grants.commands`; the credential of a call names the program (`proc.run:<program>`).
 *
 * Pure (zod only): workflow code may import this file.
 */
import { sharedOnce } from '../workflows/shared-modules';
import { defineTool, type ToolDescriptor } from './tool-descriptor';

export const PROCESS_TOOL_NAMES = ['proc.run'] as const;

/** Limits of a program's process tree when the task does not set them (`limits.processMemoryMb`, `limits.processMaxProcesses`). */
export const PROCESS_LIMIT_DEFAULTS = { memoryMb: 1024, maxProcesses: 256, workspaceMb: 1024 } as const;
export type ProcessToolName = (typeof PROCESS_TOOL_NAMES)[number];

/**
 * The descriptors, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`): each is
 * deeply frozen and a function of this file's constants alone, so every run can read the same one.
 */
const PROCESS_TOOLS: Readonly<Record<ProcessToolName, ToolDescriptor>> = sharedOnce('tools/process-tools', () => ({
  'proc.run': defineTool({
    name: 'proc.run',
    description:
      'Run a program (one the task grants by name) in an OS sandbox with the workspace as its working folder: file writes stay in the task, ' +
      'no network unless hosts are granted. Returns { exitCode, stdout, stderr, truncated, reason, durationMs } (output bounded; reason is ' +
      '"exited"). A program stopped at a limit fails the call: ERR_SANDBOX_TIMEOUT (wall or CPU time), ERR_SANDBOX_MEMORY.',
    inputSchema: {
      type: 'object',
      properties: {
        command: { type: 'string', minLength: 1, description: 'The program: a granted name such as "node", "npm" or "pytest".' },
        args: { type: 'array', items: { type: 'string' }, maxItems: 1024, description: 'Its arguments.' },
        cwd: { type: 'string', description: 'Working folder relative to the workspace (default ".").' },
        stdin: { type: 'string', maxLength: 1048576, description: 'Text written to its standard input.' },
        timeout: { type: 'string', pattern: '^\\d+(ms|s|m|h)$', description: 'Wall-time limit such as "30s" (at most the task\'s tool timeout).' },
      },
      required: ['command'],
      additionalProperties: false,
    },
    executor: { kind: 'process', program: 'granted' },
    effects: {
      families: ['code-execution', 'storage'],
      paths: [{ arg: '/cwd', access: 'write', default: '.' }],
      reads: { source: 'workspace', private: true },
    },
    annotations: { title: 'Run a program', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  }),
}));

/** The process tool called `name`; undefined when there is none. */
export function getProcessTool(name: string): ToolDescriptor | undefined {
  return Object.hasOwn(PROCESS_TOOLS, name) ? PROCESS_TOOLS[name as ProcessToolName] : undefined;
}
