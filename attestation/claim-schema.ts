/**
 * What an agent may claim about its work, as data Warden can check. A plain string is testimony:
 * kept, shown, never verified (`unverified`). Every structured kind names exactly the parameters
 * its verifier reads; nothing else the agent says reaches the verifier.
 *
 * Pure (zod only): the workflow imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';
import { cutText } from '../cut-text';
export type SqlCondition = z.infer<typeof SqlConditionSchema>;
export type Claim = z.infer<typeof ClaimSchema>;
/** A claim before defaults (as written in a task file or by a model). */
export type ClaimInput = z.input<typeof ClaimSchema>;
export type StructuredClaim = z.infer<typeof StructuredClaimSchema>;
export type ClaimKind = StructuredClaim['kind'];

/**
 * What is wrong with a claim, as `path: message` lines (empty when it reads): an object is
 * explained against the structured kinds (which field is missing or malformed), not as "not a
 * string either".
 */
export function claimProblems(raw: unknown): string[] {
  const parsed = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? StructuredClaimSchema : ClaimSchema).safeParse(raw);
  if (parsed.success) return [];
  return parsed.error.issues.map((i) => `${i.path.join('.') || '(claim)'}: ${i.message.replace(/^Invalid input: /, '')}`);
}

/** Every claim as a structured one (a string becomes `{ kind: 'text' }`). */
export function normalizeClaim(claim: Claim): StructuredClaim {
  return typeof claim === 'string' ? { kind: 'text', text: claim } : claim;
}

/** A one-line description of a claim, for summaries. */
export function describeClaim(claim: Claim): string {
  const c = normalizeClaim(claim);
  switch (c.kind) {
    case 'text':
      return c.text;
    case 'tests.pass':
      return `tests pass: ${[c.command, ...c.args].join(' ')}${c.cwd ? ` (in ${c.cwd})` : ''}`;
    case 'file.sha256':
      return `${c.path} has sha256 ${c.sha256.slice(0, 12)}…`;
    case 'file.contains':
      return `${c.path} contains ${JSON.stringify(c.text.length > 40 ? `${cutText(c.text, 40)}…` : c.text)}`;
    case 'sql.count': {
      const where = Object.keys(c.where).length === 0 ? '' : ` where ${JSON.stringify(c.where)}`;
      return `${c.database}.${c.table} has ${c.equals} row(s)${where}`;
    }
    case 'http.status':
      return `${c.method} ${c.url} answers ${c.status}`;
    case 'tool.called':
      return `called ${c.tool}${Object.keys(c.args).length === 0 ? '' : ` with ${JSON.stringify(c.args)}`}`;
    case 'custom':
      return `${c.verifier}(${JSON.stringify(c.params)})`;
  }
}

export const CLAIM_VERDICTS = ['verified', 'refuted', 'unverified'] as const;

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('attestation/claim-schema', () => {
  const RelativePathSchema = z
    .string()
    .min(1)
    .max(1024)
    .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), 'a path inside the workspace (relative, no "..")');
  const IdentifierSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'an SQL identifier (letters, digits, "_")');
  const ScalarSchema = z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]);
  /** `column: value` (equality) or `column: { op: value }`; combined with AND. Compiled to parameters, never spliced. */
  const SqlConditionSchema = z.record(
    IdentifierSchema,
    z.union([
      ScalarSchema,
      z
        .strictObject({ eq: ScalarSchema, ne: ScalarSchema, lt: z.number(), lte: z.number(), gt: z.number(), gte: z.number(), like: z.string().max(256), in: z.array(ScalarSchema).max(100) })
        .partial()
        .refine((o) => Object.keys(o).length === 1, 'exactly one operator: eq, ne, lt, lte, gt, gte, like or in'),
    ]),
  );
  const TextClaimSchema = z.strictObject({ kind: z.literal('text'), text: z.string().min(1).max(4096) });
  const TestsPassClaimSchema = z.strictObject({
    kind: z.literal('tests.pass'),
    /** The test program (an executable granted by `grants.commands`), e.g. `node`, `npm`, `pytest`. */
    command: z.string().min(1).max(256),
    args: z.array(z.string().max(4096)).max(64).default([]),
    /** Working folder inside the workspace (default: its root). */
    cwd: RelativePathSchema.optional(),
  });
  const FileSha256ClaimSchema = z.strictObject({
    kind: z.literal('file.sha256'),
    path: RelativePathSchema,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256 digest'),
  });
  const FileContainsClaimSchema = z.strictObject({
    kind: z.literal('file.contains'),
    path: RelativePathSchema,
    text: z.string().min(1).max(65_536),
  });
  const SqlCountClaimSchema = z.strictObject({
    kind: z.literal('sql.count'),
    database: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'a database name'),
    table: IdentifierSchema,
    where: SqlConditionSchema.default({}),
    equals: z.number().int().min(0),
  });
  const HttpStatusClaimSchema = z.strictObject({
    kind: z.literal('http.status'),
    url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
    method: z.enum(['GET', 'HEAD']).default('GET'),
    status: z.number().int().min(100).max(599),
  });
  const ToolCalledClaimSchema = z.strictObject({
    kind: z.literal('tool.called'),
    tool: z.string().min(1).max(256),
    /** Arguments the call must have had (each listed key equal; others ignored). */
    args: z.record(z.string(), z.unknown()).default({}),
  });
  const CustomClaimSchema = z.strictObject({
    kind: z.literal('custom'),
    /** A verifier the task file declares under `attestation.verifiers`. */
    verifier: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'a verifier name'),
    params: z.record(z.string(), z.unknown()).default({}),
  });
  const StructuredClaimSchema = z.discriminatedUnion(
    'kind',
    [TextClaimSchema, TestsPassClaimSchema, FileSha256ClaimSchema, FileContainsClaimSchema, SqlCountClaimSchema, HttpStatusClaimSchema, ToolCalledClaimSchema, CustomClaimSchema],
    { error: 'a claim: a string, or { kind: text | tests.pass | file.sha256 | file.contains | sql.count | http.status | tool.called | custom, ... }' },
  );
  /** A claim as a task file or a model writes it: a sentence, or a structured claim. */
  const ClaimSchema = z.union([z.string().min(1).max(4096), StructuredClaimSchema], { error: 'a claim: a sentence, or { kind, ... } (a structured claim)' });
  const ClaimVerdictSchema = z.enum(CLAIM_VERDICTS);
  return { RelativePathSchema, IdentifierSchema, ScalarSchema, SqlConditionSchema, TextClaimSchema, TestsPassClaimSchema, FileSha256ClaimSchema, FileContainsClaimSchema, SqlCountClaimSchema, HttpStatusClaimSchema, ToolCalledClaimSchema, CustomClaimSchema, StructuredClaimSchema, ClaimSchema, ClaimVerdictSchema };
});

export const { SqlConditionSchema, TextClaimSchema, TestsPassClaimSchema, FileSha256ClaimSchema, FileContainsClaimSchema, SqlCountClaimSchema, HttpStatusClaimSchema, ToolCalledClaimSchema, CustomClaimSchema, StructuredClaimSchema, ClaimSchema, ClaimVerdictSchema } = schemas;
const { RelativePathSchema, IdentifierSchema, ScalarSchema } = schemas;
export type ClaimVerdict = z.infer<typeof ClaimVerdictSchema>;
