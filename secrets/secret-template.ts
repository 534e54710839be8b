/**
 * Secret templates: header values in a task file that name where a secret comes from without
 * holding it. `Bearer ${env:TICKETS_TOKEN}` reads the variable on the worker at call time;
 * `${file:./tokens/crm}` reads a file (its content, one trailing newline dropped);
 * `${warden:credential}` is the per-call Warden JWT of the call (for services that check it
 * against the published JWKS). Only the template reaches workflow history.
 *
 * Pure parsing, no I/O: the task file loader checks templates with it.
 */
import { reservedEnvReason } from './reserved-env';

/** One reference inside a template. */
export type SecretReference = { kind: 'env'; name: string } | { kind: 'file'; path: string } | { kind: 'warden'; what: 'credential' };

/** A template cut into literal text and references, in order. */
export type SecretTemplateParts = (string | SecretReference)[];

const REFERENCE = /\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why a template is malformed, or its parts. */
export function parseSecretTemplate(template: string): { parts: SecretTemplateParts } | { error: string } {
  const parts: SecretTemplateParts = [];
  let last = 0;
  for (const match of template.matchAll(REFERENCE)) {
    if (match.index > last) parts.push(template.slice(last, match.index));
    last = match.index + match[0].length;
    const body = match[1] ?? '';
    const colon = body.indexOf(':');
    const kind = colon === -1 ? body : body.slice(0, colon);
    const value = colon === -1 ? '' : body.slice(colon + 1);
    if (kind === 'env') {
      if (!ENV_NAME.test(value)) return { error: `\${env:${value}} does not name an environment variable` };
      const reserved = reservedEnvReason(value);
      if (reserved !== undefined) return { error: `\${env:${value}}: ${reserved}` };
      parts.push({ kind: 'env', name: value });
    } else if (kind === 'file') {
      if (value.trim() === '') return { error: '${file:} needs a path' };
      parts.push({ kind: 'file', path: value });
    } else if (kind === 'warden' && value === 'credential') {
      parts.push({ kind: 'warden', what: 'credential' });
    } else {
      return { error: `\${${body}} is not a secret reference: use \${env:NAME}, \${file:path} or \${warden:credential}` };
    }
  }
  if (last < template.length) parts.push(template.slice(last));
  if (parts.some((p) => typeof p === 'string' && p.includes('${'))) return { error: 'an unclosed ${' };
  return { parts };
}

/** The template with every `${file:...}` path passed through `map` (the loader makes them absolute). */
export function mapFilePaths(template: string, map: (path: string) => string): string {
  return template.replace(REFERENCE, (whole, body: string) => (body.startsWith('file:') ? `\${file:${map(body.slice('file:'.length))}}` : whole));
}

/** Header names a secret may not set: the HTTP client owns them. */
export const RESERVED_SECRET_HEADERS: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);
