/**
 * Regression test, was an open finding (severity: medium; issue 17 area, lone-surrogate handling: text V8 cuts, not
 * Warden, and an isolate error that reaches a verdict without passing an entry point).
 *
 * V8 manufactures lone surrogates in its own error messages: `JSON.parse('😀')` throws
 * `SyntaxError: Unexpected token '\ud83d', "😀" is not valid JSON`, the token being ONE UTF-16
 * unit. The attestation README's own example verifier, `invoice-total`, does
 * `JSON.parse(await warden.fs.read(input.path))` on a file the agent wrote. So an agent whose
 * invoice file starts with an emoji makes the verifier throw a message holding half a pair; the
 * isolate's `threw` envelope keeps it (sandbox/run-in-isolate.ts `decodeEnvelope`), the verifier
 * means rethrow it (attestation/committed-state-means.ts), and verifyClaim makes it the claim's
 * `unverified` reason. No entry point mends it: `wellFormedJson` covers a verifier's returned
 * verdict, not its failure, and the activity failure interceptor never sees it (it is a verdict,
 * not a failure). Canonical JSON refuses the verdict
 * record, and Warden falls back to a bare verdict: reason "the check failed: TypeError: canonical
 * JSON: string at $.reason contains a lone surrogate", NO custody record (`custody` absent) and no
 * verifier credential, where the same failure on an ASCII file is recorded (custody seq/hash,
 * credential, the verifier's SyntaxError as reason).
 *
 * So the agent, by the first character of the file it wrote, keeps the check of its own claim out
 * of the custody ledger and out of the signed record (the receipt still lists the claim, as
 * unverified). The same holds for any verifier whose failure text V8 cuts (JSON.parse of agent data
 * is the common case) or that throws agent-built text.
 *
 * Fixed for the class: every failure text that leaves an isolate (a tool's or a verifier's message,
 * name, stack) is made well-formed in one place, `decodeEnvelope` (sandbox/run-in-isolate.ts), and
 * a fresh verdict is made well-formed before it is recorded, signed and returned
 * (attestation/claim-verification.ts), so no path can keep a claim's check out of custody.
 *
 * Safe behaviour asserted: the emoji row is recorded like the ASCII row (custody record, credential,
 * the verifier's error as a well-formed reason), and `warden receipt` writes the receipt (exit 0).
 *
 * Real parts: the real Temporal server and worker (test/support/warden-test-env.ts), a real
 * isolated-vm verifier, a real workspace, `warden receipt` in this process.
 */
import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const { address } = testTemporalAddress();
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() } };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

describe("a verifier's JSON.parse error on the agent's file", () => {
  // The ASCII row is the control: it passes today, with the verdict in custody.
  it.each([
    ['ASCII', 'x total: 100'],
    ['an emoji first', '\u{1F600} total: 100'],
  ])('(%s) is recorded in custody with its reason, and the receipt can be written', async (_name, content) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-verifier-json-'));
    fs.mkdirSync(join(dir, 'ws'));
    const result = await env.runTask(
      {
        user: 'ada@example.com',
        intent: 'write the invoice',
        agent: {
          name: 'biller',
          model: {
            driver: 'scripted',
            script: [
              { tool: 'fs.write', args: { path: 'invoice.json', content } },
              { final: 'invoice written', claims: [{ kind: 'custom', verifier: 'invoice-total', params: { path: 'invoice.json' } }] },
            ],
          },
        },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        resources: { workspace: 'ws' },
        // attestation/README.md's example verifier, as written there.
        attestation: {
          verifiers: {
            'invoice-total': {
              params: { type: 'object', required: ['path'], properties: { path: { type: 'string' } } },
              capabilities: ['fs.read'],
              source: `const invoice = JSON.parse(await warden.fs.read(input.path));
                const sum = invoice.lines.reduce((a, l) => a + l.amount, 0);
                return { holds: sum === invoice.total, reason: 'lines add up to ' + sum, observed: { sum } };`,
            },
          },
        },
      },
      { baseDir: dir },
    );
    const claim = result.claims?.[0];
    expect(claim?.verdict, JSON.stringify(result.claims)).toBe('unverified');
    // The verifier's own failure, not Warden's: "the check failed: TypeError: canonical JSON ..." is what the emoji row gets.
    expect(claim?.reason, JSON.stringify(claim)).toMatch(/^the check could not be made: ERR_TOOL_THREW: SyntaxError/);
    // The check's record is in the custody ledger, signed under the verifier's credential.
    expect(claim?.custody, JSON.stringify(claim)).toBeDefined();
    expect(claim?.verifier?.credential, JSON.stringify(claim)).toBeDefined();
    const receiptFile = join(dir, 'receipt.json');
    const out = await warden(['receipt', result.workflowId, '--out', receiptFile]);
    expect(out.code, out.stderr).toBe(0);
    expect(fs.existsSync(receiptFile)).toBe(true);
    expect(isWellFormed(claim?.reason ?? '')).toBe(true);
  }, 300_000);
});
