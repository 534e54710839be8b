/**
 * Stable identifiers of the parties in a task, and the RFC 8693 `act` chain that links them.
 *
 * Invariant: an identifier names exactly one party and parses back unambiguously. Agent names
 * cannot contain "@", so `agent:<name>@<workflowId>` splits at its first "@"; the workflow id
 * makes the agent of one task distinct from the same agent in every other task.
 *
 * Pure (zod only): workflow code may import this file.
 */
import { z } from 'zod';
import { SubagentNameSchema } from '../task/task-schema';

const MAX_ID_LENGTH = 512;
const MAX_ACT_DEPTH = 16;

/** `user:<id>`: the human a task acts for. */
export const UserIdSchema = z
  .string()
  .max(MAX_ID_LENGTH)
  .regex(/^user:\S+$/, 'a user id: "user:" followed by the user\'s identity, no whitespace');

/** `agent:<name>@<workflowId>`: one agent in one task (root or sub-agent). */
export const AgentIdSchema = z
  .string()
  .max(MAX_ID_LENGTH)
  .regex(/^agent:[a-z][a-z0-9_-]{0,62}@\S+$/, 'an agent id: "agent:<name>@<workflowId>"');

export const SubjectIdSchema = z.union([UserIdSchema, AgentIdSchema]);

export type UserId = `user:${string}`;
export type AgentId = `agent:${string}@${string}`;
export type SubjectId = UserId | AgentId;

/**
 * The RFC 8693 actor claim: `sub` is the current actor, `act` the one it acts for, nested down
 * to the user. Warden puts the user innermost so the chain reads user → agent → sub-agent(s).
 */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

const ActNodeSchema: z.ZodType<ActClaim> = z.lazy(() =>
  z.strictObject({
    sub: SubjectIdSchema,
    act: ActNodeSchema.optional(),
  }),
);

function actDepth(act: ActClaim): number {
  let depth = 0;
  for (let link: ActClaim | undefined = act; link !== undefined; link = link.act) depth += 1;
  return depth;
}

export const ActClaimSchema = ActNodeSchema.refine((act) => actDepth(act) <= MAX_ACT_DEPTH, `an act chain of at most ${MAX_ACT_DEPTH} parties`);

/** The id of the human `user` (an email, a login); `user:` is added unless already there. */
export function userId(user: string): UserId {
  const id = user.startsWith('user:') ? user : `user:${user}`;
  return UserIdSchema.parse(id) as UserId;
}

/** The id of agent `name` running as workflow `workflowId` (a sub-agent has its own child workflow id). */
export function agentId(name: string, workflowId: string): AgentId {
  SubagentNameSchema.parse(name);
  return AgentIdSchema.parse(`agent:${name}@${workflowId}`) as AgentId;
}

export type ParsedSubject = { kind: 'user'; id: string } | { kind: 'agent'; name: string; workflowId: string };

/** Splits an id back into its parts; throws `TypeError` for anything that is not a user or agent id. */
export function parseSubjectId(id: string): ParsedSubject {
  if (UserIdSchema.safeParse(id).success) return { kind: 'user', id: id.slice('user:'.length) };
  if (AgentIdSchema.safeParse(id).success) {
    const at = id.indexOf('@');
    return { kind: 'agent', name: id.slice('agent:'.length, at), workflowId: id.slice(at + 1) };
  }
  throw new TypeError(`not a Warden subject id: ${JSON.stringify(id)}`);
}

/** The chain as a list, user first and current actor last (the reading order of "user → agent → sub-agent"). */
export function actChainOf(act: ActClaim): string[] {
  const outerFirst: string[] = [];
  for (let link: ActClaim | undefined = act; link !== undefined; link = link.act) {
    outerFirst.push(link.sub);
    if (outerFirst.length > MAX_ACT_DEPTH) throw new TypeError(`act chain deeper than ${MAX_ACT_DEPTH}`);
  }
  return outerFirst.reverse();
}

/** Builds the nested claim from a list, user first and current actor last. */
export function actClaimOf(chain: readonly string[]): ActClaim {
  if (chain.length === 0) throw new TypeError('an act chain names at least one party');
  if (chain.length > MAX_ACT_DEPTH) throw new TypeError(`act chain deeper than ${MAX_ACT_DEPTH}`);
  let act: ActClaim | undefined;
  for (const sub of chain) act = act === undefined ? { sub } : { sub, act };
  return act as ActClaim;
}

/** The claim for `actor` acting on behalf of the chain `onBehalfOf` (the parent's `act`). */
export function extendActChain(onBehalfOf: ActClaim, actor: string): ActClaim {
  return actClaimOf([...actChainOf(onBehalfOf), actor]);
}

/** "user:alice → agent:scribe@wf → agent:reviewer@wf/reviewer-1", for humans. */
export function formatActChain(act: ActClaim): string {
  return actChainOf(act).join(' → ');
}

/** Structural equality of two act claims (same parties in the same order). */
export function sameActChain(a: ActClaim, b: ActClaim): boolean {
  const x = actChainOf(a);
  const y = actChainOf(b);
  return x.length === y.length && x.every((sub, i) => sub === y[i]);
}
