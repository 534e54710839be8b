/**
 * A prestarted workflow thread sets up the protobuf code of an activation before its worker's
 * first task (worker/activation-decoding-warmup.ts): protobufjs builds a type's `fromObject` on
 * first use, and without the warm-up that first use is the first task's first activation.
 *
 * Each case runs in a fresh Node process: @temporalio/proto's root is built once per process.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

/** Which of `types` (paths under @temporalio/proto) have their `fromObject` built, after `then` ran in a fresh process. */
function builtAfter(then: string, types: string[]): Record<string, boolean> {
  const script = `
    const proto = require('@temporalio/proto');
    const { warmActivationDecoding } = require(${JSON.stringify(join(REPO_ROOT, 'worker/activation-decoding-warmup.ts'))});
    ${then}
    const at = (path) => path.split('.').reduce((node, part) => node[part], proto);
    process.stdout.write(JSON.stringify(Object.fromEntries(${JSON.stringify(types)}.map((path) => [path, Object.hasOwn(at(path), 'fromObject')]))));`;
  return JSON.parse(execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })) as Record<string, boolean>;
}

const FIRST_ACTIVATION_TYPES = [
  'coresdk.workflow_activation.WorkflowActivation',
  'coresdk.workflow_activation.WorkflowActivationJob',
  'coresdk.workflow_activation.InitializeWorkflow',
  'coresdk.workflow_activation.ResolveActivity',
  'temporal.api.common.v1.Payload',
  'google.protobuf.Timestamp',
];

describe('the activation decoding warm-up', () => {
  it('builds what the first activation uses: the activation, its jobs, their payloads and timestamps', () => {
    const unwarmed = builtAfter('', FIRST_ACTIVATION_TYPES);
    // The probe sees protobufjs's lazy setup: nothing is built before a first use.
    expect(Object.values(unwarmed).every((built) => !built)).toBe(true);
    const warmed = builtAfter('if (!warmActivationDecoding(proto)) throw new Error("warm-up did not run");', FIRST_ACTIVATION_TYPES);
    expect(warmed).toEqual(Object.fromEntries(FIRST_ACTIVATION_TYPES.map((type) => [type, true])));
  });

  it('a real activation converts the same after it', () => {
    const activation = { runId: 'run-1', jobs: [{ initializeWorkflow: { workflowType: 'agentTask', workflowId: 'w', arguments: [{ metadata: { encoding: 'anNvbi9wbGFpbg==' }, data: 'e30=' }], randomnessSeed: '7' } }] };
    const convert = `process.stdout.write(JSON.stringify(proto.coresdk.workflow_activation.WorkflowActivation.toObject(proto.coresdk.workflow_activation.WorkflowActivation.fromObject(${JSON.stringify(activation)}), { longs: String, bytes: String })));`;
    const plain = execFileSync(process.execPath, ['-e', `const proto = require('@temporalio/proto'); ${convert}`], { cwd: REPO_ROOT, encoding: 'utf8' });
    const warmed = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', `const proto = require('@temporalio/proto'); require(${JSON.stringify(join(REPO_ROOT, 'worker/activation-decoding-warmup.ts'))}).warmActivationDecoding(proto); ${convert}`], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(JSON.parse(warmed)).toEqual(JSON.parse(plain));
    expect(JSON.parse(plain).jobs[0].initializeWorkflow.workflowType).toBe('agentTask');
  });

  it('anything but @temporalio/proto is refused quietly', () => {
    expect(builtAfter('if (warmActivationDecoding({}) || warmActivationDecoding(null)) throw new Error("ran");', ['coresdk.workflow_activation.WorkflowActivation'])).toEqual({ 'coresdk.workflow_activation.WorkflowActivation': false });
  });
});
