/**
 * Removing known secret values from text that leaves a trusted process: a model's answer, an
 * HTTP response handed to a tool. Each secret is replaced where it appears verbatim, and also in
 * the forms a server most often reflects it in (base64, base64url, URL-encoded) and, for values
 * of 8 characters or more, any 8-character run of it (servers echo masked keys like
 * `sk-...a1b2c3d4`). What this cannot catch: a reflection transformed some other way (hashed,
 * reversed, split); grant secrets only to hosts that do not echo them.
 *
 * No imports but the import-free cut-text.ts: the sandbox host and the drivers both use it.
 */
import { sliceText } from '../cut-text';

export const REDACTED = '[redacted]';

/** The forms of one secret that are searched for, longest first. */
function formsOf(secret: string): string[] {
  const forms = new Set<string>([secret]);
  if (secret.length >= 6) {
    forms.add(Buffer.from(secret, 'utf8').toString('base64').replace(/=+$/, ''));
    forms.add(Buffer.from(secret, 'utf8').toString('base64url'));
    forms.add(encodeURIComponent(secret));
  }
  return [...forms].filter((f) => f.length > 0).sort((a, b) => b.length - a.length);
}

/** Replaces the secret (all its forms, and 8-character runs of it) in `text`. */
export function redactSecret(text: string, secret: string | undefined): string {
  if (secret === undefined || secret === '') return text;
  let out = text;
  for (const form of formsOf(secret)) out = out.replaceAll(form, REDACTED);
  const run = Math.min(8, secret.length);
  // A run never starts or ends inside a surrogate pair (it is one unit shorter there): replacing
  // half a pair would leave the text's other half alone, which canonical JSON refuses.
  for (let i = 0; i + run <= secret.length; i++) {
    const part = sliceText(secret, i, i + run);
    if (part !== '') out = out.replaceAll(part, REDACTED);
  }
  return out;
}

/** {@link redactSecret} for every secret. */
export function redactText(text: string, secrets: readonly (string | undefined)[]): string {
  return secrets.reduce<string>((out, secret) => redactSecret(out, secret), text);
}

/** {@link redactSecret} for every secret, over every string of a JSON value (keys included). */
export function redactSecrets<T>(value: T, secrets: readonly (string | undefined)[]): T {
  const live = secrets.filter((s): s is string => s !== undefined && s !== '');
  if (live.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, live);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(v)) Object.defineProperty(out, redactText(key, live), { value: walk(inner), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  };
  return walk(value) as T;
}
