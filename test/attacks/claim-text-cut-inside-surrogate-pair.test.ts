/**
 * Fixed finding, now a regression test (severity: low; issue 17 area, lone-surrogate handling at entry points).
 *
 * A malformed claim is kept as its text, cut to 500 characters (its JSON) or 4,096 (a sentence)
 * by UTF-16 index (attestation/claim-verification.ts `readClaim`). A cut that falls between the
 * two halves of a surrogate pair (any emoji, any character outside the BMP) leaves a lone high
 * surrogate in text Warden made itself, after every entry point mended the agent's words. The
 * verdict's custody record then cannot be canonicalised (custody/canonical-json.ts refuses lone
 * surrogates), and `verifyAndAttestClaim`, documented as "never throws for the claim's sake",
 * throws a TypeError: the attestClaim activity fails (3 attempts) and no verdict record of the
 * claim reaches custody.
 *
 * The agent decides where its characters fall, so it decides whether its claim gets a verdict
 * record. Same class elsewhere: `pinToolListing` cuts an MCP tool's description at 8,192 UTF-16
 * units and then canonicalises it (a listing with an emoji across the cut is refused,
 * ERR_MCP_PROTOCOL), covered in the second test below.
 *
 * Fixed: every cut of such text goes through cut-text.ts, which never splits a pair (at most N
 * units, one fewer rather than half a character).
 *
 * Safe behaviour asserted: a cut never splits a pair (or the text is made well-formed after the
 * cut), the claim gets its 'unverified' verdict, the record is in custody and the ledger verifies.
 *
 * Real parts: a real keystore, grant store and custody ledger (SQLite) in a temporary state folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyAndAttestClaim, type AttestClaimInput } from '../../attestation/claim-verification';
import { CustodyLedger } from '../../custody/ledger';
import { verifyLedger } from '../../custody/verify-ledger';
import { openCredentialStores } from '../../identity/credential-stores';
import { openKeystore } from '../../identity/keystore';
import { hashIntent, issueTaskGrant } from '../../identity/task-grant';
import { TaskSchema } from '../../task/task-schema';
import { MAX_DESCRIPTION_CHARS, pinToolListing } from '../../mcp/mcp-tool-listing';

const EMOJI = '\u{1F600}'; // two UTF-16 units
const PREFIX = '{"kind":"text","text":"';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('a malformed claim cut inside a surrogate pair', () => {
  // Each claim is malformed (too long), and its kept text would end on the high half of EMOJI.
  const cases: [string, unknown][] = [
    ['a structured claim (its JSON cut at 500)', { kind: 'text', text: `${'a'.repeat(500 - PREFIX.length - 1)}${EMOJI}${'b'.repeat(5000)}` }],
    ['a sentence (cut at 4,096)', `${'a'.repeat(4095)}${EMOJI}b`],
  ];
  it.each(cases)('%s gets its unverified verdict recorded in custody, and the ledger verifies', async (_what, claim) => {
    const stateDir = mkdtempSync(join(tmpdir(), 'warden-claim-cut-'));
    dirs.push(stateDir);
    const stores = openCredentialStores({ stateDir });
    const ledger = CustodyLedger.open({ stateDir });
    try {
      const keystore = await openKeystore({ stateDir });
      const grants = { tools: ['fs.read'], subagents: [], hosts: [], databases: [], commands: [] };
      const grant = await issueTaskGrant(keystore, {
        workflowId: 'warden-claim-cut',
        user: 'user@example.com',
        intentHash: hashIntent('cut'),
        agent: { name: 'agent', model: { id: 'scripted', version: '1' } },
        grants,
        expiresAt: Date.now() + 3_600_000,
      });
      await stores.grants.saveGrant(grant);
      const task = TaskSchema.parse({
        user: 'user@example.com',
        intent: 'cut',
        agent: { name: 'agent', model: { driver: 'scripted', script: [{ final: 'x' }] } },
        tools: { builtin: ['fs.read'] },
        grants,
      });
      const input: AttestClaimInput = {
        rootWorkflowId: 'warden-claim-cut',
        rootRunId: 'run-1',
        task,
        committed: true,
        taskStatus: 'completed',
        claimant: { workflowId: 'warden-claim-cut', runId: 'run-1', agent: 'agent', model: { id: 'scripted', version: '1' }, grantId: grant.id },
        index: 0,
        claim,
      };
      const deps = { keystore, stores, stateDir, protectedPaths: [stateDir], protectedFiles: [], ledger };
      let outcome: Awaited<ReturnType<typeof verifyAndAttestClaim>> | undefined;
      let thrown: unknown;
      try {
        outcome = await verifyAndAttestClaim(deps, input);
      } catch (error) {
        thrown = error;
      }
      expect(thrown === undefined ? undefined : String(thrown)).toBeUndefined();
      expect(outcome?.verdict).toBe('unverified');
      expect(ledger.records({ taskId: 'warden-claim-cut' }).length).toBeGreaterThan(0);
      expect(verifyLedger(ledger).ok).toBe(true);
    } finally {
      ledger.close();
      stores.close?.();
    }
  });

  it("an MCP tool whose description has an emoji across the 8,192-unit cut is pinned, its kept description well-formed", () => {
    const description = `${'d'.repeat(MAX_DESCRIPTION_CHARS - 1)}${EMOJI} and more`;
    let pinned: ReturnType<typeof pinToolListing> | undefined;
    let thrown: unknown;
    try {
      pinned = pinToolListing('docs', 'stdio', [{ name: 'search', description, inputSchema: { type: 'object' } }]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown === undefined ? undefined : String(thrown)).toBeUndefined();
    const kept = pinned?.tools[0]?.description ?? '';
    expect((kept as string & { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  });
});
