/**
 * Every place Warden cuts text that an agent, a tool, a client or a user wrote cuts through
 * cut-text.ts: each row puts a character outside the BMP (two UTF-16 units) across that site's cut
 * and checks that what Warden made is well-formed (canonical JSON, RFC 8785 §3.2.2.2, refuses a
 * lone surrogate) and still as long as the site allows, less at most the one unit of the pair.
 * The end-to-end cases (a verdict, a receipt, an MCP session, a tests.pass claim) are in
 * test/attacks/: claim-text-cut-inside-surrogate-pair, refuted-claim-reason-blocks-receipt,
 * mcp-client-name-blocks-receipt, failing-tests-claim-escapes-refutation.
 */
import { describe, expect, it } from 'vitest';
import { refutationReason } from '../attestation/claim-outcome';
import { describeClaim } from '../attestation/claim-schema';
import { verifyClaim } from '../attestation/verify-claim';
import { canonicalBytes } from '../custody/canonical-json';
import { showName } from '../dataplane/worker-naming';
import { pinToolListing, MAX_DESCRIPTION_CHARS } from '../mcp/mcp-tool-listing';
import { carriedName, MAX_CARRIED_NAME, reclaimCarried } from '../monitoring/monitor-carry';
import type { MonitorHistory } from '../monitoring/monitor-history';
import { capabilityError, failedOutcome } from '../sandbox/capabilities/capability-error';
import { redactSecret, REDACTED } from '../secrets/redact-values';
import { taskFileLocator } from '../task/task-file-locations';
import type { Task } from '../task/task-schema';
import { taskSearchAttributes } from '../workflows/search-attributes';
import { oneLine } from '../workflows/ui-summaries';

const E = '\u{1F600}';
const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();
/** `n` units of `c`, then E, then more: E's high half is unit `n`, so a cut at `n + 1` splits it. */
const across = (n: number, c = 'a') => `${c.repeat(n)}${E}${c.repeat(50)}`;

interface Row {
  site: string;
  /** What Warden made from the text with E across its cut. */
  made: () => string | Promise<string>;
  /** The least length the site keeps (its bound less the unit of the pair it backed off). */
  atLeast: number;
}

const rows: Row[] = [
  {
    site: 'attestation/claim-outcome.ts refutationReason: the claim at 120',
    made: () => refutationReason([{ verdict: 'refuted', agent: 'a', text: across(119), reason: 'no' }])!,
    atLeast: 119,
  },
  {
    site: 'attestation/claim-outcome.ts refutationReason: the reason at 200',
    made: () => refutationReason([{ verdict: 'refuted', agent: 'a', text: 't', reason: across(199) }])!,
    atLeast: 199,
  },
  {
    site: 'attestation/claim-schema.ts describeClaim: file.contains text at 40',
    made: () => JSON.parse(describeClaim({ kind: 'file.contains', path: 'p', text: across(39) }).slice('p contains '.length)) as string,
    atLeast: 39,
  },
  {
    site: 'attestation/verify-claim.ts: a malformed claim quoted at 200',
    made: async () => (await verifyClaim({ kind: 'nonsense', x: across(200 - '{"kind":"nonsense","x":"'.length - 1) }, {})).text,
    atLeast: 199,
  },
  {
    site: 'attestation/verify-claim.ts tests.pass: the stdout tail at 2,000',
    made: async () => {
      const check = await verifyClaim(
        { kind: 'tests.pass', command: 'node', args: ['t.js'] },
        { testCommands: [{ command: 'node', args: ['t.js'] }], runTests: async () => ({ exitCode: 1, stdout: `${E}${'x'.repeat(1999)}`, stderr: '' }) },
      );
      expect(check.verdict).toBe('refuted');
      return (check.observed as { stdoutTail: string }).stdoutTail;
    },
    atLeast: 1999,
  },
  {
    site: 'mcp/mcp-tool-listing.ts pinToolListing: a description at 8,192',
    made: () => pinToolListing('docs', 'stdio', [{ name: 's', description: across(MAX_DESCRIPTION_CHARS - 1, 'd'), inputSchema: { type: 'object' } }]).tools[0]!.description!,
    atLeast: MAX_DESCRIPTION_CHARS - 1,
  },
  {
    site: 'monitoring/monitor-carry.ts carriedName: a long tool name',
    made: () => carriedName(across(MAX_CARRIED_NAME - 25)),
    atLeast: MAX_CARRIED_NAME - 25,
  },
  {
    site: 'sandbox/capabilities/capability-error.ts failedOutcome: a message at 1,000',
    made: () => {
      const outcome = failedOutcome(capabilityError('ERR_TOOL_THREW', across(999)));
      return outcome.ok ? '' : outcome.message;
    },
    atLeast: 999,
  },
  {
    site: 'dataplane/worker-naming.ts showName: a name at 80',
    made: () => JSON.parse(showName(across(79)).split('…')[0]!) as string,
    atLeast: 79,
  },
  {
    site: 'workflows/ui-summaries.ts oneLine: a summary at 120',
    made: () => oneLine(across(118)),
    atLeast: 119,
  },
  {
    site: 'workflows/search-attributes.ts: a keyword (user id) at 512',
    made: () => taskSearchAttributes({ user: across(511), agent: { name: 'a', model: { id: 'm' } } } as unknown as Task)[0]!.value as string,
    atLeast: 511,
  },
  {
    site: 'task/task-file-locations.ts: an excerpt of a long line, both ends',
    made: () => {
      // Offset 199 is shown with its 80 units before: from unit 119, the low half of the first emoji.
      const line = `${'a'.repeat(118)}${E}${'a'.repeat(158)}${E}${'b'.repeat(200)}`;
      const { excerpt, column } = taskFileLocator(line).at(199);
      // The column still points at unit 199 of the line within the excerpt (after its leading '…').
      expect(excerpt.slice(1)[column - 2]).toBe(line[199]);
      expect(excerpt.slice(1, column - 1)).toBe(line.slice(120, 199));
      return excerpt;
    },
    atLeast: 160,
  },
];

describe('a character outside the BMP across each cut site', () => {
  it.each(rows.map((r) => [r.site, r] as const))('%s', async (_site, row) => {
    const made = await row.made();
    expect(isWellFormed(made)).toBe(true);
    expect(made.length).toBeGreaterThanOrEqual(row.atLeast);
    expect(() => canonicalBytes({ made })).not.toThrow();
  });

  it('secrets/redact-values.ts: an 8-unit run of a secret never replaces half a pair', () => {
    const secret = `pw${E}${E}${E}${E}`;
    // The text holds all of the secret but its first unit: the run `w` + three emoji + a high half
    // (units 1..8) matches there and would leave the last emoji's low half alone.
    const text = `x${secret.slice(1)}!`;
    const redacted = redactSecret(text, secret);
    expect(isWellFormed(redacted)).toBe(true);
    expect(redacted).toContain(REDACTED);
  });

  it('monitoring/monitor-carry.ts reclaimCarried: counts carried under the old split stand-in come back too', () => {
    const name = across(MAX_CARRIED_NAME - 25);
    const oldKey = `${name.slice(0, MAX_CARRIED_NAME - 24)}...#${carriedName(name).split('#').pop()}`;
    expect(oldKey).not.toBe(carriedName(name));
    const history = { events: [], callsByTool: { [oldKey]: 3 }, earlier: { rowsByOperation: {} } } as unknown as MonitorHistory;
    reclaimCarried(history, [name]);
    expect(history.callsByTool).toEqual({ [name]: 3 });
  });
});
