/**
 * `warden approvers add|list|remove`: who may decide held actions. `add` has Warden issue a person
 * an approver key: the public half is registered in the state folder, the private half is written
 * to a key file (0600) for that person, who signs decisions with it (`warden approve --key`).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { argumentCountText, parseCommandArgs } from '../parse-command-args';
import { WardenError } from '../../errors';
import { issueApproverKey } from '../../identity/approval-decision';
import { defaultApproverKeyDir, openApproverRegistry } from '../../identity/approver-registry';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const APPROVERS_USAGE = `usage: warden approvers add <name> [--out <file>]
       warden approvers list [--json]
       warden approvers remove <name>

  add     issue <name> an approver key: registered here, written to --out (default
          <approver key folder>/<name>.json; the folder is WARDEN_APPROVER_DIR, else
          ~/.config/warden/approvers). Give the file to that person only; keep it out of workspaces.
  list    the registered approvers: name, key id, when added, active or removed
  remove  revoke <name>: decisions signed with its key no longer count`;

export async function approversCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('approvers', APPROVERS_USAGE, argv, io, { out: { type: 'string' }, json: { type: 'boolean', default: false } });
  if (typeof args === 'number') return args;
  const [action, name, ...extra] = args.positionals;
  const needsName = action === 'add' || action === 'remove';
  if ((needsName || action === 'list') && (needsName ? extra.length > 0 : name !== undefined)) {
    io.stderr(`${terminalLine(`warden approvers: ${argumentCountText(action!, needsName ? 1 : 0, [name!, ...extra])}`)}\n${APPROVERS_USAGE}\n`);
    return EXIT.usage;
  }
  if (!(needsName ? name !== undefined : action === 'list')) {
    io.stderr(`warden approvers: expected add <name>, list or remove <name>\n${APPROVERS_USAGE}\n`);
    return EXIT.usage;
  }
  if (args.values.out !== undefined && action !== 'add') {
    io.stderr(`warden approvers: --out applies to add only\n${APPROVERS_USAGE}\n`);
    return EXIT.usage;
  }
  // The shared registry when WARDEN_DATABASE_URL is set: every worker verifies against it.
  const store = await openApproverRegistry({ stateDir: stateDirOf(io.env), env: io.env });
  try {
    if (action === 'list') {
      const records = await store.list();
      if (args.values.json) io.stdout(`${terminalJson(records, 2)}\n`);
      else if (records.length === 0) io.stdout('no approvers; add one with `warden approvers add <name>`\n');
      else {
        for (const r of records) {
          const status = r.revokedAt === undefined ? 'active' : `removed ${new Date(r.revokedAt).toISOString()}`;
          io.stdout(`${terminalLine(`${r.name}  ${r.kid}  added ${new Date(r.addedAt).toISOString()}  ${status}${r.keyFile === undefined ? '' : `  ${r.keyFile}`}`)}\n`);
        }
      }
      return EXIT.ok;
    }
    if (action === 'remove') {
      if (!(await store.remove(name!))) {
        io.stderr(`warden approvers: no approver named "${terminalLine(name!)}"\n`);
        return EXIT.failed;
      }
      io.stdout(`removed ${terminalLine(name!)}: decisions signed with its key no longer count\n`);
      return EXIT.ok;
    }
    if ((await store.get(name!)) !== undefined) {
      io.stderr(`warden approvers: an approver named "${terminalLine(name!)}" is already registered (remove it and add another name to issue a new key)\n`);
      return EXIT.usage;
    }
    const out = resolve(args.values.out ?? join(defaultApproverKeyDir(io.env), `${name}.json`));
    // The default key folder is Warden's to make; a folder the user named in --out must exist.
    if (args.values.out === undefined) mkdirSync(dirname(out), { recursive: true, mode: 0o700 });
    // Checked before the key is issued (and registered): a key file is never overwritten (cli/output-file.ts).
    const written = { option: '--out', mode: 0o600, exclusive: true };
    await checkOutputFile(out, written);
    const { record, keyFile } = await issueApproverKey(store, { name: name!, keyFile: out });
    await writeOutputFile(out, `${JSON.stringify(keyFile, null, 2)}\n`, written);
    io.stdout(`${[`added approver ${record.name} (key ${record.kid})`, `key file: ${out}`, `decide with: warden approve <workflowId> <requestId> --key ${out}`].map(terminalLine).join('\n')}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden approvers: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  } finally {
    await store.close();
  }
}
