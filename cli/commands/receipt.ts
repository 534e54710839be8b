/**
 * `warden receipt <workflowId>` writes the signed receipt of a finished task
 * (attestation/task-receipt.ts); `warden receipt verify <file>` checks one offline, with only the
 * published JWKS (and optionally the custody witness).
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { collectTaskReceipt } from '../../attestation/collect-receipt';
import { verifyTaskReceipt, type ReceiptCheck } from '../../attestation/task-receipt';
import { readPublishedHeads } from '../../custody/checkpoint-witness';
import { wellFormedJson } from '../../custody/well-formed-json';
import { AttestationError, WardenError } from '../../errors';
import { openCredentialAuthority } from '../../identity/credential-authority';
import { hashIntent } from '../../identity/task-grant';
import { stateDirOf } from '../../state-dir';
import { openStateStore, usesSharedDatabase } from '../../state/state-store';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { describeTask } from '../../client/task-not-found';
import { taskResultOfFailure } from '../../workflows/task-close';
import { runningServerConfig } from '../temporal-client';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { parseCommandArgs } from '../parse-command-args';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { readJsonFile, trustedJwks } from './attest';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const RECEIPT_USAGE = `usage: warden receipt <workflowId> [--out <file>]
       warden receipt verify <file> [--jwks <file>] [--witness <file|folder>] [--json]

  <workflowId>  writes one signed bundle for the whole (finished) task: who asked (user, intent
                hash), every agent and model, every action with its decision and matched rules,
                every claim verdict with the signed attestations, and the inclusion proof of each
                of the task's custody records against a signed tree head (taken now if the latest
                does not cover them, and published to WARDEN_CUSTODY_WITNESS). Reads Temporal
                (TEMPORAL_ADDRESS or the embedded server) and this state folder's ledger and keys.
  verify        checks a receipt offline: Warden's signature and every claim's with --jwks (default:
                the keys this state folder already holds; read only, none is created), every
                custody record's hash, signature and audit path to the tree head, and the tree
                head's signature by a custody key of the JWKS or of --witness (whose published
                heads must then include it).
                Exit 0 valid, 1 invalid, 2 bad usage, an unreadable file, or no key to verify
                against (no --jwks and no key here: the key id it names is said).`;

/** The closed task's result and the user and intent its workflow was started with. */
async function finishedTask(io: CliIo, workflowId: string): Promise<{ result: TaskResult; user: string; intent: string }> {
  const { client, connection } = await connectClient(await runningServerConfig(io.env), { connectTimeoutMs: 5_000 });
  try {
    const handle = client.workflow.getHandle(workflowId);
    const description = await describeTask(client, workflowId);
    // A task that did not complete closes as failed, carrying its result (workflows/task-close.ts).
    const result = description.status.name === 'COMPLETED' || description.status.name === 'FAILED' ? await handle.result().then((r) => r as TaskResult, (error: unknown) => taskResultOfFailure(error)) : undefined;
    if (result === undefined) {
      throw new AttestationError('ERR_ATTESTATION_MALFORMED', `task ${workflowId} is ${description.status.name.toLowerCase()}: a receipt is written for a task that has ended with a result`);
    }
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = started?.input?.payloads?.[0] === undefined ? undefined : (defaultPayloadConverter.fromPayload(started.input.payloads[0]) as { task?: { user?: unknown; intent?: unknown } });
    if (typeof input?.task?.user !== 'string' || typeof input.task.intent !== 'string') {
      throw new AttestationError('ERR_ATTESTATION_MALFORMED', `workflow ${workflowId} is not an agent task started by Warden`);
    }
    return { result, user: input.task.user, intent: input.task.intent };
  } finally {
    await connection.close();
  }
}

async function writeReceipt(io: CliIo, workflowId: string, out: string | undefined): Promise<number> {
  // Where the receipt goes is checked before the task is read and the receipt signed (cli/output-file.ts).
  if (out !== undefined) await checkOutputFile(out, { option: '--out' });
  return writeReceiptOf(io, workflowId, await finishedTask(io, workflowId), out);
}

/**
 * Writes the signed receipt of one ended task from its result (as `handle.result()` gives it) and
 * the user and intent it was started with, to `out` or stdout; returns the exit code. Throws
 * AttestationError ERR_ATTESTATION_MALFORMED when the record cannot be made a receipt.
 */
export async function writeReceiptOf(io: CliIo, workflowId: string, finished: { result: TaskResult; user: string; intent: string }, out: string | undefined): Promise<number> {
  const stateDir = stateDirOf(io.env);
  // A history recorded before client text was made well-formed at entry (an approval's or a kill's
  // reason) may hold a lone surrogate, which the receipt's canonical JSON refuses: the receipt is
  // built from the text with each one replaced by U+FFFD, and says so.
  const mended = wellFormedJson({ result: finished.result, user: finished.user });
  const { result, user } = mended.value;
  const { intent } = finished;
  if (result.workflowId !== workflowId) throw new AttestationError('ERR_ATTESTATION_MALFORMED', `${workflowId} is a sub-agent's workflow; write the receipt of its task ${result.workflowId}`);
  const state = usesSharedDatabase(io.env) ? await openStateStore({ stateDir, env: io.env }) : undefined;
  try {
    const authority = await openCredentialAuthority({ stateDir, env: io.env, ...(state === undefined ? {} : { state }) });
    try {
      const receipt = await collectTaskReceipt({ stateDir, env: io.env, result, user, intentHash: hashIntent(intent), signer: authority.keystore.byteSigner() }).catch((error: unknown) => {
        // Whatever else the receipt cannot hold is a typed failure naming the field, never a raw TypeError.
        if (error instanceof TypeError && error.message.startsWith('canonical JSON:')) throw new AttestationError('ERR_ATTESTATION_MALFORMED', `task ${workflowId}: the receipt cannot hold its record: ${error.message}`);
        throw error;
      });
      if (mended.mended > 0) io.stderr(`${terminalLine(`warden receipt: task ${workflowId}'s recorded result held ${mended.mended} string(s) with a lone UTF-16 surrogate (recorded before such text was mended at entry); each is written as U+FFFD`)}\n`);
      const text = `${terminalJson(receipt, 2)}\n`;
      if (out === undefined) io.stdout(text);
      else {
        await writeOutputFile(out, text, { option: '--out' });
        io.stderr(`${terminalLine(`warden receipt: wrote ${out}: task ${workflowId} (${result.status}), ${receipt.custody.records.length} custody records proven against tree head #${receipt.custody.checkpoint.id}, ${receipt.attestations.length} signed claims`)}\n`);
      }
      return EXIT.ok;
    } finally {
      await authority.close();
    }
  } finally {
    await state?.close();
  }
}

/** The check in words, one line each: the receipt is someone else's file, its text made safe for a terminal line (../../terminal-text.ts). */
function describe(check: ReceiptCheck): string {
  if (!check.ok) return `receipt INVALID\n${check.problems.map((p) => terminalLine(`  ${p}`)).join('\n')}\n`;
  const p = check.predicate!;
  const verdicts = p.claims.map((c) => `  claim ${c.verdict.padEnd(10)} ${c.agent}: ${c.text}`);
  return [
    `receipt OK: task ${p.task.workflowId} (run ${p.task.runId}) for ${p.task.user}: ${p.task.status}`,
    `  signed by ${check.keyids.join(', ')}; ${p.actions.length} actions; ${check.provenRecords} custody records proven${check.publishedHead === true ? ' against a tree head the witness published' : ''}`,
    ...verdicts,
  ]
    .map(terminalLine)
    .join('\n') + '\n';
}

async function verifyReceipt(io: CliIo, file: string, options: { jwks?: string; witness?: string; json: boolean }): Promise<number> {
  const receipt = readJsonFile(io, 'receipt', file, 'receipt');
  if (receipt === undefined) return EXIT.usage;
  const jwks = await trustedJwks(io, 'receipt', options.jwks, receipt);
  if (jwks === undefined) return EXIT.usage;
  const witness = options.witness === undefined ? undefined : readPublishedHeads(options.witness);
  const check = verifyTaskReceipt(receipt, jwks, witness === undefined ? {} : { witnessKeys: witness.keys, witnessHeads: witness.heads.map((h) => h.checkpoint) });
  io.stdout(options.json ? `${terminalJson(check, 2)}\n` : describe(check));
  return check.ok ? EXIT.ok : EXIT.failed;
}

export async function receiptCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('receipt', RECEIPT_USAGE, argv, io, {
    out: { type: 'string' },
    jwks: { type: 'string' },
    witness: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (typeof args === 'number') return args;
  const [first, second, ...extra] = args.positionals;
  const verifying = first === 'verify';
  if (first === undefined || extra.length > 0 || (verifying ? second === undefined : second !== undefined)) {
    io.stderr(`warden receipt: expected <workflowId>, or verify <file>\n${RECEIPT_USAGE}\n`);
    return EXIT.usage;
  }
  if (verifying ? args.values.out !== undefined : args.values.jwks !== undefined || args.values.witness !== undefined || args.values.json === true) {
    io.stderr(`warden receipt: --out is for writing a receipt; --jwks, --witness and --json for verifying one\n${RECEIPT_USAGE}\n`);
    return EXIT.usage;
  }
  try {
    if (verifying) {
      return await verifyReceipt(io, second!, {
        json: args.values.json === true,
        ...(args.values.jwks === undefined ? {} : { jwks: args.values.jwks }),
        ...(args.values.witness === undefined ? {} : { witness: args.values.witness }),
      });
    }
    return await writeReceipt(io, first, args.values.out);
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden receipt: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
