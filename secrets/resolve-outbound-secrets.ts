/**
 * Turns a task's secret templates into the header values the HTTP capability adds, on the worker,
 * at call time. Only hosts the call may reach get their secrets; a variable or file that is not
 * there fails the call before anything is sent, naming the variable or the path (never a value).
 *
 * Invariant: resolved values live only in this call's capability grant, on their way to the
 * sandbox host process; they are never returned, logged or put on a span.
 */
import { WHOSE_ENVIRONMENT } from './worker-environment';
import { constants, readlinkSync, realpathSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { open } from 'node:fs/promises';
import { CapabilityError } from '../errors';
import { createProtectedGuard, describeRefusal, type ProtectedSet } from '../sandbox/capabilities/protected-guard';
import type { HostGrantEntry } from '../sandbox/sandbox-messages';
import type { Task } from '../task/task-schema';
import { parseSecretTemplate, type SecretReference } from './secret-template';
import { deniedEnvReason } from './reserved-env';
import { secretOriginOf } from './secret-origin';

export interface OutboundSecrets {
  /** Headers to add, per `resources.secrets` key (`host`, `host:port`, `http://host:port`: secrets/secret-origin.ts). */
  secrets: { host: string; headers: Record<string, string> }[];
  /** Every value to remove from what comes back (each resolved reference and each whole header value). */
  redact: string[];
}

/**
 * The worker's own limit on `${file:}` references: folders (separated by `:`, like PATH) that
 * secret files must lie in, by the real path of the file opened. Unset: any file that is not
 * Warden's own.
 */
export const SECRET_FILE_DIRS_ENV = 'WARDEN_SECRET_FILE_DIRS';

/** The allowed folders as one string when the opened file `fd` lies in none of them; undefined when allowed (or no limit is set). */
function outsideSecretFileDirs(fd: number, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const dirs = (env[SECRET_FILE_DIRS_ENV] ?? '').split(':').map((d) => d.trim()).filter((d) => d !== '');
  if (dirs.length === 0) return undefined;
  let real: string;
  try {
    real = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return dirs.join(':'); // the opened file cannot be named: refuse rather than guess
  }
  const inside = dirs.some((dir) => {
    let root: string;
    try {
      root = realpathSync(dir);
    } catch {
      return false;
    }
    const rel = relative(root, real);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
  return inside ? undefined : dirs.join(':');
}

/** A secret file is a token or a key, never a large file (64 KiB). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

function hostOf(entry: HostGrantEntry): string {
  return (typeof entry === 'string' ? entry : entry.host).trim().toLowerCase();
}

/**
 * The secrets of the hosts in `allowedHosts`, resolved now.
 * @throws CapabilityError `ERR_SECRET_UNAVAILABLE` naming the variable or file that is missing;
 *   `ERR_RESOURCE_PROTECTED` when a `${file:}` reference opens one of Warden's own files.
 */
export async function resolveOutboundSecrets(
  config: Task['resources']['secrets'],
  options: {
    env: Readonly<Record<string, string | undefined>>;
    credential: string;
    allowedHosts: readonly HostGrantEntry[];
    /** Warden's own files and folders (activities/run-tool.ts protectedSetForCall): a `${file:}` reference to them is refused. */
    protected?: ProtectedSet;
  },
): Promise<OutboundSecrets> {
  const allowed = new Set(options.allowedHosts.map(hostOf));
  const secrets: OutboundSecrets['secrets'] = [];
  const redact = new Set<string>();
  for (const [host, headers] of Object.entries(config)) {
    if (!allowed.has(secretOriginOf(host).host)) continue;
    const resolved: Record<string, string> = {};
    for (const [name, template] of Object.entries(headers)) {
      const parsed = parseSecretTemplate(template);
      if ('error' in parsed) throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${name} for ${host} is malformed: ${parsed.error}`);
      let value = '';
      for (const part of parsed.parts) {
        if (typeof part === 'string') {
          value += part;
          continue;
        }
        const secret = await resolveReference(part, options, `${name} for ${host} (resources.secrets.${host}.${name})`);
        redact.add(secret);
        value += secret;
      }
      if (/[\r\n\0]/.test(value)) throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${name} for ${host} would hold a line break or NUL`);
      resolved[name.toLowerCase()] = value;
      redact.add(value);
    }
    secrets.push({ host, headers: resolved });
  }
  return { secrets, redact: [...redact].filter((v) => v.length >= 4) };
}

async function resolveReference(
  reference: SecretReference,
  options: { env: Readonly<Record<string, string | undefined>>; credential: string; protected?: ProtectedSet },
  what: string,
): Promise<string> {
  switch (reference.kind) {
    case 'env': {
      const denied = deniedEnvReason(reference.name, options.env);
      if (denied !== undefined) throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what}: ${denied}`, { details: { variable: reference.name } });
      const value = options.env[reference.name];
      if (value === undefined || value === '') throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what} needs the environment variable ${reference.name}, which is not set ${WHOSE_ENVIRONMENT}`, { details: { variable: reference.name } });
      return value;
    }
    case 'file': {
      let handle;
      try {
        // Non-blocking: a FIFO named here must not hang the worker.
        handle = await open(reference.path, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what} reads ${reference.path}, which the worker cannot read (${code})`, { details: { path: reference.path } });
      }
      try {
        // Checked on the file actually opened (links, renames and keys made since the task started included).
        const refusal = options.protected === undefined ? undefined : createProtectedGuard(options.protected).refusalOfDescriptor(handle.fd, 'read');
        if (refusal !== undefined) {
          throw new CapabilityError('ERR_RESOURCE_PROTECTED', `the secret header ${what} is not read: ${describeRefusal(reference.path, refusal)}; a secret reference may not read Warden's own files`, {
            details: { path: reference.path },
            retryable: false,
          });
        }
        const outside = outsideSecretFileDirs(handle.fd, options.env);
        if (outside !== undefined) {
          throw new CapabilityError('ERR_RESOURCE_PROTECTED', `the secret header ${what} is not read: ${reference.path} is outside the folders ${SECRET_FILE_DIRS_ENV} allows (${outside})`, {
            details: { path: reference.path },
            retryable: false,
          });
        }
        const stat = await handle.stat();
        if (!stat.isFile() || stat.size > MAX_SECRET_FILE_BYTES) {
          throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what} reads ${reference.path}, which is not a regular file of at most ${MAX_SECRET_FILE_BYTES} bytes`, { details: { path: reference.path } });
        }
        return (await handle.readFile('utf8')).replace(/\r?\n$/, '');
      } finally {
        await handle.close();
      }
    }
    case 'warden':
      return options.credential;
  }
}
