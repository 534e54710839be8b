/**
 * What the verifier of one claim may touch: one read-only tool of its own (`warden-verifier.<kind>`)
 * and exactly the resources the claim's declared parameters name, each within what the agent
 * that made the claim was granted. A claim that names anything else gets no credential: it stays
 * `unverified`, and nothing is read, queried, run or requested for it.
 *
 *   file.sha256 / file.contains   fs.read:<path>               the task has a workspace
 *   sql.count                     sql.query:db:<database>      the agent was granted the database
 *   http.status                   http.fetch:<METHOD>:<host><path>   the agent was granted the host (as http.fetch)
 *   tests.pass                    proc.run:<command>           the agent was granted the program
 *   tool.called                   <tool>:<workflowId>          (the recorded steps only)
 *   custom                        <tool>:invoke + one scope per read-only capability the verifier declares
 *
 * So an agent cannot point Warden's verifier at a host, database or program it could not reach
 * itself (no SSRF, no confused deputy through claims).
 *
 * Pure: no Node APIs.
 */
import { fsScope, httpScope, sqlScope } from '../identity/call-scope';
import type { GrantSet } from '../identity/claims';
import type { CapabilityGrant } from '../sandbox/sandbox-messages';
import type { Task } from '../task/task-schema';
import { requiredScopeOf } from '../tools/call-scope';
import type { StructuredClaim } from './claim-schema';

/** The verifier's agent name in its grant (`agent:warden-verifier@<claim id>`). */
export const VERIFIER_AGENT = 'warden-verifier';

/** The read-only capabilities any verifier may hold; nothing that writes is ever in a verifier's grant. */
export const READ_ONLY_ACTIONS = ['fs.read', 'fs.list', 'sql.query', 'http.fetch', 'proc.run'] as const;

export interface VerifierAccess {
  /** The verifier's own tool name: its credential's audience is `tool:<tool>`. */
  tool: string;
  /** Exactly the resources this check touches. */
  scope: string[];
  /** The verifier grant the credential is minted from: the tool, read-only actions, and only the resources in `scope`. */
  grants: GrantSet;
  /** For user-defined verifiers: the capabilities handed to the isolate (read-only, narrowed). */
  capabilities?: CapabilityGrant;
}

/** Why a claim's verifier gets no access (the claim stays `unverified`). */
export class VerifierAccessRefused extends Error {
  readonly code = 'ERR_CREDENTIAL_SCOPE';
}

/** The verifier tool of a claim kind (`warden-verifier.sql.count`, `warden-verifier.custom.<name>`). */
export function verifierToolOf(claim: StructuredClaim): string {
  return claim.kind === 'custom' ? `${VERIFIER_AGENT}.custom.${claim.verifier}` : `${VERIFIER_AGENT}.${claim.kind}`;
}

function grantSet(tool: string, actions: string[], more: Partial<GrantSet> = {}): GrantSet {
  return { tools: [tool, ...actions], subagents: [], hosts: more.hosts ?? [], databases: more.databases ?? [], ...(more.commands === undefined ? {} : { commands: more.commands }) };
}

/** Hosts an agent may reach: granted and listed under the task's resources (as `http.fetch` and `proc.run` apply them). */
export function reachableHosts(agentGrants: Pick<GrantSet, 'hosts'>, task: Pick<Task, 'resources'>): string[] {
  return agentGrants.hosts.filter((h) => task.resources.hosts.includes(h));
}

/** Databases an agent may use: granted and declared under the task's resources. */
export function reachableDatabases(agentGrants: Pick<GrantSet, 'databases'>, task: Pick<Task, 'resources'>): string[] {
  return agentGrants.databases.filter((d) => task.resources.databases[d] !== undefined);
}

/**
 * The access of the verifier of `claim`, made by an agent holding `agentGrants` in `task`.
 * `workspaceRoot` is the real path of the task's workspace, when it has one.
 * @throws VerifierAccessRefused naming what the claim asks for that the agent was not granted.
 * @throws TypeError for a `text` claim (there is nothing to verify).
 */
export function verifierAccessOf(claim: StructuredClaim, agentGrants: GrantSet, task: Pick<Task, 'resources' | 'attestation'>, claimant: { workflowId: string; agent: string }, workspaceRoot?: string): VerifierAccess {
  const tool = verifierToolOf(claim);
  const refuse = (why: string) => new VerifierAccessRefused(`the verifier gets no access: ${why}`);
  switch (claim.kind) {
    case 'text':
      throw new TypeError('a text claim has no verifier');
    case 'file.sha256':
    case 'file.contains':
      if (task.resources.workspace === undefined) throw refuse('the task has no workspace');
      return { tool, scope: [fsScope('read', claim.path)], grants: grantSet(tool, ['fs.read']) };
    case 'sql.count': {
      if (!reachableDatabases(agentGrants, task).includes(claim.database)) throw refuse(`database "${claim.database}" is not granted to ${claimant.agent}`);
      return { tool, scope: [sqlScope('query', claim.database)], grants: grantSet(tool, ['sql.query'], { databases: [claim.database] }) };
    }
    case 'http.status': {
      const host = new URL(claim.url).host;
      if (!reachableHosts(agentGrants, task).includes(host)) throw refuse(`host "${host}" is not granted to ${claimant.agent}`);
      return { tool, scope: [httpScope(claim.method, claim.url)], grants: grantSet(tool, ['http.fetch'], { hosts: [host] }) };
    }
    case 'tests.pass': {
      if (!(agentGrants.commands ?? []).includes(claim.command)) throw refuse(`program "${claim.command}" is not granted to ${claimant.agent}`);
      if (claim.cwd !== undefined && task.resources.workspace === undefined) throw refuse('the task has no workspace to run the tests in');
      return { tool, scope: [`proc.run:${claim.command}`], grants: grantSet(tool, ['proc.run'], { commands: [claim.command] }) };
    }
    case 'tool.called':
      return { tool, scope: [`${tool}:${claimant.workflowId}`], grants: grantSet(tool, []) };
    case 'custom': {
      const verifier = task.attestation?.verifiers[claim.verifier];
      if (verifier === undefined) throw refuse(`no verifier "${claim.verifier}" is declared under attestation.verifiers`);
      const has = (c: string) => verifier.capabilities.includes(c as never);
      const capabilities: CapabilityGrant = {};
      if ((has('fs.read') || has('fs.list')) && workspaceRoot !== undefined) capabilities.fs = { root: workspaceRoot, read: has('fs.read'), write: false, list: has('fs.list') };
      const hosts = has('http.fetch') ? reachableHosts(agentGrants, task) : [];
      if (has('http.fetch')) capabilities.http = { allowedHosts: hosts };
      const databases = has('sql.query') ? reachableDatabases(agentGrants, task) : [];
      if (has('sql.query')) capabilities.sql = { databases: Object.fromEntries(databases.map((d) => [d, task.resources.databases[d]!])), query: true, exec: false };
      const actions = verifier.capabilities.filter((c) => c !== 'http.fetch' || hosts.length > 0);
      return {
        tool,
        scope: requiredScopeOf(tool, claim.params, capabilities),
        grants: grantSet(tool, actions, { hosts, databases }),
        capabilities,
      };
    }
  }
}
