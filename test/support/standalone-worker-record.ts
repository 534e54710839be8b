/** The identity a running `warden worker` polls under, read from its record in the state folder. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STANDALONE_RECORDS_DIR, standaloneWorkerIdentity, StandaloneWorkerRecordSchema } from '../../worker/standalone-worker';

/** The nonce of the record of worker process `pid` in `stateDir`; throws when it has none. */
export function standaloneWorkerNonce(stateDir: string, pid: number): string {
  const dir = join(stateDir, STANDALONE_RECORDS_DIR);
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    const record = StandaloneWorkerRecordSchema.safeParse(JSON.parse(readFileSync(join(dir, name), 'utf8')));
    if (record.success && record.data.pid === pid) return record.data.nonce;
  }
  throw new Error(`no standalone worker record of pid ${pid} in ${dir}`);
}

/** The Temporal identity of the running standalone worker `pid` on `stateDir`. */
export function runningStandaloneWorkerIdentity(stateDir: string, pid: number): string {
  return standaloneWorkerIdentity(stateDir, standaloneWorkerNonce(stateDir, pid), pid);
}
