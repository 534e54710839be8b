/**
 * An in-toto ResourceDescriptor used as a Statement subject
 * (https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md): a name and at
 * least one digest. Warden's subjects: `file:<path>` (the file's SHA-256), `workflow:<id>` (the
 * digest of `{ workflowId, runId }`), `custody:<seq>` (the custody record's hash).
 *
 * Pure (zod only): the workflow imports this file.
 */
import { z } from 'zod';
import { sharedOnce } from '../workflows/shared-modules';

/**
 * Every schema of the file, built once per workflow thread (workflows/shared-modules.ts `sharedOnce`):
 * each workflow run would otherwise build them all afresh.
 */
const schemas = sharedOnce('attestation/in-toto-subject', () => {
  const SubjectSchema = z.strictObject({
    name: z.string().min(1),
    digest: z.record(z.string().regex(/^[a-z0-9-]+$/), z.string().regex(/^[0-9a-f]+$/)).refine((d) => Object.keys(d).length > 0, 'at least one digest'),
    annotations: z.record(z.string(), z.unknown()).optional(),
  });
  return { SubjectSchema };
});

export const { SubjectSchema } = schemas;
export type Subject = z.infer<typeof SubjectSchema>;
