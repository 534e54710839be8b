/**
 * Custody keys pinned outside the ledger's own store.
 *
 * A ledger verifies only against keys its verifier trusts for reasons of its own. The shared
 * ledger publishes each worker's public key in `warden_public_keys`, but a key only the database
 * vouches for proves nothing against someone who can write that database: they can wipe the
 * ledger, re-append it under a key of their own and publish that key. So `warden audit verify`
 * trusts the keys pinned here (the local worker's key folder, `--keys`, WARDEN_CUSTODY_TRUSTED_KEYS,
 * or a witness's `jwks.json`) and reports a ledger that verifies only with database-published keys
 * as internally consistent, not intact.
 */
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { UserFileError } from '../regular-file';
import type { KeyObject } from 'node:crypto';
import { CustodyError } from '../errors';
import { readJwksFile } from './checkpoint-witness';
import { loadTrustedKeys } from './signing-key';
import { trustedKeysFromJwks } from './verify-ledger';

/**
 * Keys from a pin location: a JWKS file (RFC 7517 `{ "keys": [...] }` of Ed25519 OKP keys), or a
 * folder of `<kid>.pub.pem` files and/or a `jwks.json`.
 * @throws UserFileError ERR_INPUT_FILE_UNREADABLE when nothing is there; CustodyError ERR_CUSTODY_NOT_FOUND when it holds no key;
 *   ERR_CUSTODY_BROKEN when a JWKS file does not parse.
 */
export function loadPinnedKeys(location: string): Map<string, KeyObject> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(location);
  } catch {
    // A location the user named (--keys, WARDEN_CUSTODY_TRUSTED_KEYS): missing is bad input (exit 2), as any user file.
    throw new UserFileError(location, 'pinned custody keys', 'missing', `no such file or folder: looked for ${resolve(location)}`);
  }
  const keys = stat.isDirectory()
    ? new Map([...loadTrustedKeys(location), ...trustedKeysFromJwks(readJwksFile(join(location, 'jwks.json')))])
    : trustedKeysFromJwks(readJwksFile(location));
  if (keys.size === 0) throw new CustodyError('ERR_CUSTODY_NOT_FOUND', `${location} holds no Ed25519 custody key to pin (a JWKS file, or a folder of <kid>.pub.pem)`, { details: { keys: location } });
  return keys;
}
