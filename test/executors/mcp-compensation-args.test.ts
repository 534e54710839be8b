/** Arguments of an MCP tool's compensating call, mapped from the original call by JSON pointer. */
import { describe, expect, it } from 'vitest';
import { mcpCompensationArgs } from '../../executors/mcp-executor';
import { parseTask } from '../../task/load-task-file';

const task = parseTask(
  {
    user: 'u@example.com',
    intent: 'file tickets',
    agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
    tools: {
      mcp: {
        tickets: {
          url: 'http://127.0.0.1:9/mcp',
          tools: {
            createIssue: { compensate: { tool: 'tickets.delete-issue', args: { id: '/output/structuredContent/id', project: '/args/project', labels: '/args/labels/*' } } },
            comment: { compensate: { tool: 'tickets.delete-comment' } },
          },
        },
      },
    },
    grants: { tools: ['tickets.create-issue', 'tickets.delete-issue', 'tickets.delete-comment'] },
  },
  'task.yaml',
  '/tmp',
);

describe('mcpCompensationArgs', () => {
  it('maps single values and collects "*" matches into arrays', () => {
    const args = mcpCompensationArgs(task, {
      tool: 'tickets.create-issue',
      args: { project: 'ops', labels: ['bug', 'p1'], title: 't' },
      output: { content: [{ type: 'text', text: 'created' }], structuredContent: { id: 42 } },
    });
    expect(args).toEqual({ id: 42, project: 'ops', labels: ['bug', 'p1'] });
  });

  it('leaves tools without a mapping to the usual { compensationId, original } input', () => {
    expect(mcpCompensationArgs(task, { tool: 'tickets.comment', args: {}, output: null })).toBeUndefined();
    expect(mcpCompensationArgs(task, { tool: 'fs.write', args: {}, output: null })).toBeUndefined();
  });

  it('refuses to guess when a pointer finds nothing', () => {
    expect(() => mcpCompensationArgs(task, { tool: 'tickets.create-issue', args: { project: 'ops' }, output: { content: [] } })).toThrow(
      expect.objectContaining({ code: 'ERR_COMPENSATION_FAILED', message: expect.stringMatching(/\/output\/structuredContent\/id finds nothing/) }),
    );
  });
});
