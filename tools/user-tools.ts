/**
 * User-defined tools (a task file's `tools.custom`) as descriptors: a JavaScript body run in a
 * fresh isolate, with the capabilities, effects and annotations the task file declares.
 */
import type { UserTool } from '../task/task-schema';
import { defineTool, type ToolDescriptor } from './tool-descriptor';

const cache = new WeakMap<UserTool, ToolDescriptor>();

/** The descriptor of one `tools.custom` entry (cached per entry object). */
export function descriptorOfUserTool(tool: UserTool): ToolDescriptor {
  let descriptor = cache.get(tool);
  if (descriptor === undefined) {
    descriptor = defineTool({
      name: tool.name,
      description: tool.description,
      inputSchema: tool.input,
      executor: { kind: 'isolate', source: tool.source },
      capabilities: tool.capabilities,
      ...(tool.effects === undefined ? {} : { effects: tool.effects }),
      ...(tool.annotations === undefined ? {} : { annotations: tool.annotations }),
      ...(tool.compensate === undefined ? {} : { compensate: tool.compensate }),
      ...(tool.timeout === undefined ? {} : { timeout: tool.timeout }),
      ...(tool.memoryMb === undefined ? {} : { memoryMb: tool.memoryMb }),
    });
    cache.set(tool, descriptor);
  }
  return descriptor;
}
