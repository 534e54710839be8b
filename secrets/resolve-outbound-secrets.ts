/**
 * Turns a task's secret templates into the header values the HTTP capability adds, on the worker,
 * at call time. Only hosts the call may reach get their secrets; a variable or file that is not
 * there fails the call before anything is sent, naming the variable or the path (never a value).
 *
 * Invariant: resolved values live only in this call's capability grant, on their way to the
 * sandbox host process; they are never returned, logged or put on a span.
 */
import { readFile } from 'node:fs/promises';
import { CapabilityError } from '../errors';
import type { HostGrantEntry } from '../sandbox/sandbox-messages';
import type { Task } from '../task/task-schema';
import { parseSecretTemplate, type SecretReference } from './secret-template';
import { deniedEnvReason } from './reserved-env';

export interface OutboundSecrets {
  /** Headers to add, per granted host entry (`host` or `host:port`). */
  secrets: { host: string; headers: Record<string, string> }[];
  /** Every value to remove from what comes back (each resolved reference and each whole header value). */
  redact: string[];
}

function hostOf(entry: HostGrantEntry): string {
  return (typeof entry === 'string' ? entry : entry.host).trim().toLowerCase();
}

/**
 * The secrets of the hosts in `allowedHosts`, resolved now.
 * @throws CapabilityError `ERR_SECRET_UNAVAILABLE` naming the variable or file that is missing.
 */
export async function resolveOutboundSecrets(
  config: Task['resources']['secrets'],
  options: { env: Readonly<Record<string, string | undefined>>; credential: string; allowedHosts: readonly HostGrantEntry[] },
): Promise<OutboundSecrets> {
  const allowed = new Set(options.allowedHosts.map(hostOf));
  const secrets: OutboundSecrets['secrets'] = [];
  const redact = new Set<string>();
  for (const [host, headers] of Object.entries(config)) {
    if (!allowed.has(host.trim().toLowerCase())) continue;
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
        const secret = await resolveReference(part, options, `${name} for ${host}`);
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
  options: { env: Readonly<Record<string, string | undefined>>; credential: string },
  what: string,
): Promise<string> {
  switch (reference.kind) {
    case 'env': {
      const denied = deniedEnvReason(reference.name, options.env);
      if (denied !== undefined) throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what}: ${denied}`, { details: { variable: reference.name } });
      const value = options.env[reference.name];
      if (value === undefined || value === '') throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what} needs the environment variable ${reference.name}, which is not set on the worker`, { details: { variable: reference.name } });
      return value;
    }
    case 'file': {
      try {
        return (await readFile(reference.path, 'utf8')).replace(/\r?\n$/, '');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        throw new CapabilityError('ERR_SECRET_UNAVAILABLE', `the secret header ${what} reads ${reference.path}, which the worker cannot read (${code})`, { details: { path: reference.path } });
      }
    }
    case 'warden':
      return options.credential;
  }
}
