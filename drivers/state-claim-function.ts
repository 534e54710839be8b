/**
 * `state_claim`: the function a model calls to state a structured claim about its work (what
 * Warden will check after the task commits). It is offered by every model driver next to the
 * task's tools; a call becomes a `claim` action, never a tool call, and is answered in the
 * transcript with whether Warden could read it (so a model can restate a malformed claim).
 *
 * Provider-neutral: a driver maps `stateClaimFunction()` to its wire format, decodes a call with
 * `claimActionOf`, and adds `pastClaimCalls` to its transcript.
 */
import { claimProblems } from '../attestation/claim-schema';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import type { Action } from '../task/task-run';

export const STATE_CLAIM_FUNCTION = 'state_claim';

/** What the system prompt says about claims. */
export const CLAIMS_GUIDANCE =
  `Before you finish, state each checkable fact about your work with ${STATE_CLAIM_FUNCTION} (a file's digest or text, a row count, ` +
  'tests passing, an endpoint\'s status, a tool you called). Warden checks every claim itself after the task, independently of you, and reports any it finds false.';

const CLAIM_KINDS = ['tests.pass', 'file.sha256', 'file.contains', 'sql.count', 'http.status', 'tool.called', 'custom', 'text'] as const;

/** The function as offered: name, description, JSON Schema of its arguments (one flat object, portable across providers). */
export function stateClaimFunction(): { name: string; description: string; parameters: Record<string, unknown> } {
  return {
    name: STATE_CLAIM_FUNCTION,
    description:
      'State one claim about your work for Warden to verify. Kinds and their fields: ' +
      'tests.pass {command, args?, cwd?} (the test command exits 0); file.sha256 {path, sha256}; file.contains {path, text}; ' +
      'sql.count {database, table, where?, equals} (rows matching where, e.g. {"status": "open"} or {"qty": {"gt": 3}}); ' +
      'http.status {url, method?, status}; tool.called {tool, args?}; custom {verifier, params}; text {text} (a sentence Warden cannot check).',
    parameters: {
      type: 'object',
      properties: {
        kind: { type: 'string', enum: [...CLAIM_KINDS] },
        command: { type: 'string' },
        args: { description: 'tests.pass: the command arguments (array of strings); tool.called: the call arguments (object)' },
        cwd: { type: 'string' },
        path: { type: 'string', description: 'a path relative to the workspace' },
        sha256: { type: 'string' },
        text: { type: 'string' },
        database: { type: 'string' },
        table: { type: 'string' },
        where: { type: 'object' },
        equals: { type: 'integer', minimum: 0 },
        url: { type: 'string' },
        method: { type: 'string', enum: ['GET', 'HEAD'] },
        status: { type: 'integer' },
        tool: { type: 'string' },
        verifier: { type: 'string' },
        params: { type: 'object' },
      },
      required: ['kind'],
    },
  };
}

/** The `claim` action of a `state_claim` call (read as data; checked only after the task). */
export function claimActionOf(args: Record<string, unknown>, callId: string | undefined): Action {
  return { type: 'claim', claim: args, ...(callId === undefined || callId === '' ? {} : { callId }) };
}

/** A past `state_claim` call and the answer the model is shown for it. */
export interface PastClaimCall {
  turn: number;
  callId: string | undefined;
  arguments: Record<string, unknown>;
  result: string;
}

/** The calls of `claims` as they go back into a transcript, with what Warden answers to each. */
export function pastClaimCalls(claims: readonly StatedClaimRecord[] | undefined): PastClaimCall[] {
  return (claims ?? []).map((stated) => {
    const args = typeof stated.claim === 'string' ? { kind: 'text', text: stated.claim } : stated.claim;
    const problems = claimProblems(stated.claim);
    const result =
      problems.length === 0
        ? JSON.stringify({ recorded: true, note: 'Warden will verify this claim after the task ends' })
        : JSON.stringify({ error: { code: 'ERR_CLAIM_INVALID', message: `${problems.slice(0, 3).join('; ')}; state it again, corrected` } });
    return { turn: stated.turn, callId: stated.callId, arguments: args, result };
  });
}
