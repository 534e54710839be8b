/**
 * URLs configured by operators (a webhook) often carry a credential: userinfo
 * (`https://user:password@host/`) or a token in the query (`?token=...`). These helpers keep such
 * parts out of every message, parsed with the WHATWG URL parser (https://url.spec.whatwg.org) as
 * `fetch` parses them.
 */
import { redactText } from './redact-values';

/** `url` as it may be shown: scheme, host and path; userinfo and query replaced by `***`, no fragment. */
export function displayUrl(url: URL): string {
  const userinfo = url.username !== '' || url.password !== '' ? '***@' : '';
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${url.search === '' ? '' : '?***'}`;
}

/** The parts of `url` that may be secret: userinfo and query values, raw and percent-decoded (each at least 4 characters). */
export function secretPartsOf(url: URL): string[] {
  const parts = new Set<string>();
  const add = (value: string) => {
    if (value.length >= 4) parts.add(value);
    try {
      const decoded = decodeURIComponent(value);
      if (decoded.length >= 4) parts.add(decoded);
    } catch {
      // not percent-encoded text: the raw form is enough
    }
  };
  add(url.username);
  add(url.password);
  add(url.search.slice(1));
  for (const [name, value] of url.searchParams) {
    add(value);
    add(name);
  }
  add(url.hash.slice(1));
  return [...parts];
}

/** `text` with every secret part of `url` (and the whole URL) removed. */
export function redactUrlSecrets(text: string, url: URL): string {
  return redactText(text.replaceAll(url.href, displayUrl(url)), secretPartsOf(url));
}
