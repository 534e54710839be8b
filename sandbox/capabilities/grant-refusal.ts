/**
 * What a task's grants refuse, asked before a call is held for a human: the one rule, read by the
 * policy check of a proposed action (activities/check-policy.ts, which the data flow's check ahead
 * shares) and by the sandbox host's policy gate for every capability call a tool makes
 * (sandbox/policy-gate.ts).
 *
 * Invariant: a call the grants refuse (a tool that declares a capability the task does not grant,
 * a host not both granted and declared, a path outside the workspace or protected, a database not
 * both granted and declared, a program not granted) is never held for approval nor counted as
 * approved: where a rule would hold it, it is denied at once under the rule id {@link GRANT_RULE}
 * with the grant's reason. A human asked about it could only approve a call the capability (or the
 * call's credential) would then refuse, and the task would wait on that question until its
 * deadline. A call whose credential would be refused is denied so before any rule is asked; any
 * other the rules allow is refused by the capability itself, in its own code, as before (tool code
 * may catch that refusal; it is not a policy stop). The checks are the capabilities' own
 * (`httpGrantRefusal`, `fsPathRefusal`, the credential scope check), so what is refused here is
 * exactly what the call would be refused.
 *
 * Not decided here: what needs the network or the statement itself (a granted name that resolves
 * to a private address, table grants of a SQL statement): the capability refuses those where it
 * measures them, before the gate asks any rule (SQL), or when it connects (addresses).
 */
import type { ErrorCode } from '../../errors';
import { scopeOutsideGrant } from '../../identity/call-scope';
import type { Task } from '../../task/task-schema';
import { scopeOfCall } from '../../tools/call-scope';
import { capabilityGrantFor, ungrantedCapabilities } from '../../tools/tool-catalog';
import type { CapabilityName, ToolDescriptor } from '../../tools/tool-descriptor';
import type { CapabilityGrant } from '../sandbox-messages';
import { fsPathRefusal } from './fs-capability';
import { httpGrantRefusal } from './http-capability';

/** The rule id a refusal by the grants is recorded under (step.policy.matched, the gate's report). */
export const GRANT_RULE = 'grants';
/** How that rule reads in a step's record. */
export const GRANT_RULE_SENTENCE = 'only what the task grants';

/** Why the grants refuse a call: the code the capability would refuse it with, and its words. */
export interface GrantRefusal {
  code: ErrorCode;
  reason: string;
  /**
   * The call's credential would be refused (identity/call-scope.ts: a host, database or capability
   * outside `grants`): refused before any rule is asked, whatever the rules say. Any other refusal
   * takes the place of a hold (where the rules allow the call, the capability refuses it itself,
   * in its own code, as tool code may expect).
   */
  credential?: true;
}

/** The refusal as a matched rule, in the shape a policy decision lists its rules. */
export function grantRuleMatch(refusal: GrantRefusal): { id: string; sentence: string; effect: 'deny'; reason: string; kind: 'stateful' } {
  return { id: GRANT_RULE, sentence: GRANT_RULE_SENTENCE, effect: 'deny', reason: refusal.reason, kind: 'stateful' };
}

/**
 * Why `grant` (the capabilities one tool call is handed: tools/tool-catalog.ts `capabilityGrantFor`)
 * refuses a call of `capability` with `args` as the capability takes them (`path`; `url`, `method`;
 * `database`), or undefined when it covers it.
 */
export function capabilityCallRefusal(grant: CapabilityGrant, capability: CapabilityName, args: Record<string, unknown>): GrantRefusal | undefined {
  switch (capability) {
    case 'fs.read':
    case 'fs.write':
    case 'fs.list': {
      const access = capability.slice(3) as 'read' | 'write' | 'list';
      if (grant.fs === undefined || !grant.fs[access]) return { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: `${capability} is not granted to this call` };
      const path = args['path'] ?? (access === 'list' ? '.' : undefined);
      // A path that is not text is a malformed call (its input validation says so), not a grant's matter.
      if (typeof path !== 'string') return undefined;
      const refused = fsPathRefusal(grant.fs, path, access);
      return refused === undefined ? undefined : { code: refused.code, reason: refused.message };
    }
    case 'http.fetch': {
      if (grant.http === undefined) return { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: 'http.fetch is not granted to this call' };
      if (grant.http.allowedHosts.length === 0) {
        return { code: 'ERR_NETWORK_DENIED', reason: 'the task grants no host that is both in grants.hosts and in resources.hosts, so every http.fetch is refused' };
      }
      // A URL or method that is not text is a malformed call (its input validation says so), not a grant's matter.
      if (typeof args['url'] !== 'string' || (args['method'] !== undefined && typeof args['method'] !== 'string')) return undefined;
      const refused = httpGrantRefusal(grant.http, args['url'], args['method']);
      return refused === undefined ? undefined : { code: refused.code, reason: refused.message };
    }
    case 'sql.query':
    case 'sql.exec': {
      const op = capability.slice(4) as 'query' | 'exec';
      if (grant.sql === undefined || !grant.sql[op]) return { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: `${capability} is not granted to this call` };
      const database = args['database'];
      if (typeof database !== 'string' || !Object.hasOwn(grant.sql.databases, database)) {
        const granted = Object.keys(grant.sql.databases).sort();
        return {
          code: 'ERR_DATABASE_NOT_GRANTED',
          reason: `database ${JSON.stringify(database)} is not granted (granted and declared: ${granted.length === 0 ? 'none' : granted.join(', ')})`,
        };
      }
      return undefined;
    }
  }
}

/**
 * Why the task's grants refuse the proposed call of `tool` with `args`, or undefined when they do
 * not (the policy rules then decide). `workspaceRoot` is the real path of the task's workspace and
 * `protected` what no call may open or change (activities/protected-set.ts), as the call would get them.
 */
export function actionGrantRefusal(
  task: Task,
  tool: ToolDescriptor,
  args: Record<string, unknown>,
  context: { workspaceRoot?: string; protected?: { folders: string[]; files: string[]; readOnly: string[] } } = {},
): GrantRefusal | undefined {
  if (tool.executor.kind === 'mcp') return undefined;
  if (tool.executor.kind === 'process') {
    const command = args['command'];
    const granted = task.grants.commands ?? [];
    if (typeof command === 'string' && !granted.includes(command)) {
      return { code: 'ERR_COMMAND_NOT_GRANTED', reason: `program "${command}" is not granted to this task (grants.commands: [${granted.join(', ')}])` };
    }
    return undefined;
  }
  // A capability the tool declares and the task does not grant is never handed out (activities/run-tool.ts refuses the call).
  const ungranted = ungrantedCapabilities(task, tool);
  if (ungranted.length > 0) return { code: 'ERR_CAPABILITY_NOT_GRANTED', reason: `tool ${tool.name} declares capabilities the task does not grant: ${ungranted.map((u) => u.why).join('; ')}` };
  if (tool.executor.kind !== 'builtin') return undefined;
  const credential = credentialRefusal(task, tool, args);
  if (credential !== undefined) return credential;
  // Then the capability's own checks, on the grant the call would be handed.
  const grant = capabilityGrantFor(task, tool, context.workspaceRoot);
  if (grant.fs !== undefined && context.protected !== undefined) {
    grant.fs.protectedPaths = context.protected.folders;
    grant.fs.protectedFiles = context.protected.files;
    grant.fs.readOnlyPaths = context.protected.readOnly;
  }
  return capabilityCallRefusal(grant, tool.executor.capability, args);
}

/**
 * Why the credential of a built-in's call would be refused (identity/call-scope.ts, in its words):
 * a host, database or capability its arguments name that `grants` does not hold. Pure and cheap:
 * asked before any rule, for every call.
 */
export function credentialRefusal(task: Task, tool: ToolDescriptor, args: Record<string, unknown>): GrantRefusal | undefined {
  if (tool.executor.kind !== 'builtin') return undefined;
  let scope: string[] | undefined;
  try {
    scope = scopeOfCall(tool, args);
  } catch {
    scope = undefined;
  }
  const outside = scope === undefined ? null : scopeOutsideGrant(task.grants, tool.name, scope);
  return outside === null ? undefined : { code: codeOfScopeRefusal(tool.executor.capability), reason: outside, credential: true };
}

function codeOfScopeRefusal(capability: CapabilityName): ErrorCode {
  return capability === 'http.fetch' ? 'ERR_NETWORK_DENIED' : capability.startsWith('sql.') ? 'ERR_DATABASE_NOT_GRANTED' : 'ERR_CAPABILITY_NOT_GRANTED';
}
