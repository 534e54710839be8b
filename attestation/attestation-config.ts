/**
 * The task file's `attestation` section: user-defined verifiers for `custom` claims, and how long
 * one verification may take.
 *
 *   attestation:
 *     timeout: 2m                      # per claim (tests re-run, a request, a verifier)
 *     verifiers:
 *       invoice-total:
 *         description: the invoice's lines add up to its total
 *         params: { type: object, required: [path] }   # JSON Schema of the claim's params
 *         capabilities: [fs.read]                      # read-only: fs.read, fs.list, sql.query, http.fetch
 *         source: |                                    # body of async function (params, warden)
 *           const invoice = JSON.parse(await warden.fs.read(params.path));
 *           const sum = invoice.lines.reduce((a, l) => a + l.amount, 0);
 *           return { holds: sum === invoice.total, reason: `lines add up to ${sum}`, observed: { sum } };
 *
 * A verifier runs in a fresh isolate of the sandbox host, under its own credential, with only
 * read-only capabilities on the committed state, each narrowed to what the agent making the claim
 * was granted (its databases and hosts). It must return `{ holds: boolean, reason: string,
 * observed?: JSON }`; anything else leaves the claim `unverified`.
 *
 * Pure (zod only): the task schema, which the workflow imports, includes this.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { durationToMs } from '../task/duration';

/** Capabilities a user-defined verifier may be handed: read-only ones only. */
export const VERIFIER_CAPABILITIES = ['fs.read', 'fs.list', 'sql.query', 'http.fetch'] as const;
export type VerifierCapability = (typeof VERIFIER_CAPABILITIES)[number];

/** Longest a verification may be given: an hour. */
const MAX_VERIFICATION_MS = 3_600_000;
export type UserVerifier = z.infer<typeof UserVerifierSchema>;

/** Default time one claim's verification may take. */
export const DEFAULT_VERIFICATION_TIMEOUT = '2m';
export type TestCommand = z.infer<typeof TestCommandSchema>;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('attestation/attestation-config', () => {
  const VerifierNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'a verifier name: lower-case letters, digits, "_" or "-"');
  const VerificationTimeoutSchema = z
    .string()
    .regex(/^\d{1,12}(ms|s|m|h)$/, 'a duration such as "30s", "2m" or "1h"')
    .refine((d) => !/^\d{1,12}(ms|s|m|h)$/.test(d) || (durationToMs(d) >= 1000 && durationToMs(d) <= MAX_VERIFICATION_MS), 'between 1s and 1h');
  const UserVerifierSchema = z.strictObject({
    description: z.string().max(4096).optional(),
    /** JSON Schema (Ajv subset) the claim's `params` must satisfy. */
    params: z.record(z.string(), z.unknown()).default({ type: 'object' }),
    capabilities: z.array(z.enum(VERIFIER_CAPABILITIES, { error: `a verifier capability: ${VERIFIER_CAPABILITIES.join(', ')}` })).max(4).default([]),
    /** Body of `async function (params, warden)`; returns `{ holds, reason, observed? }`. */
    source: z.string().min(1).max(256 * 1024),
    memoryMb: z.number().int().min(8).max(1024).optional(),
  });
  /** A command that counts as the task's tests: what a `tests.pass` claim must name to be checked. */
  const TestCommandSchema = z.strictObject({
    /** The test program (granted by `grants.commands`), e.g. `node`, `npm`, `pytest`. */
    command: z.string().min(1).max(256),
    args: z.array(z.string().max(4096)).max(64).default([]),
    /** Working folder inside the workspace (default: its root). */
    cwd: z.string().max(4096).optional(),
  });
  const AttestationConfigSchema = z.strictObject({
    /** Per claim: re-running tests, a request, a user verifier (default 2m). */
    timeout: VerificationTimeoutSchema.default(DEFAULT_VERIFICATION_TIMEOUT),
    verifiers: z.record(VerifierNameSchema, UserVerifierSchema).default({}),
    /**
     * The commands that are the task's tests. A `tests.pass` claim is checked only when it names one
     * of them (command, arguments and folder): which command counts as "the tests" is the task
     * author's to say, never the claimant's (`node -e 0` exits 0 too).
     */
    tests: z.array(TestCommandSchema).max(16).default([]),
  });
  return { VerifierNameSchema, VerificationTimeoutSchema, UserVerifierSchema, TestCommandSchema, AttestationConfigSchema };
});

export const { VerifierNameSchema, VerificationTimeoutSchema, UserVerifierSchema, TestCommandSchema, AttestationConfigSchema } = schemas;
export type AttestationConfig = z.infer<typeof AttestationConfigSchema>;
