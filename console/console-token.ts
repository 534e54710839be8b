/**
 * The console's login token: 256 random bits, printed once when `warden console` starts and
 * required, as `Authorization: Bearer <token>`, on every API call. Compared in constant time
 * (SHA-256 of both sides, so lengths do not leak either).
 *
 * Invariant: the token is never written to disk, a log line, a URL's path or query, or a page;
 * the printed link carries it in the fragment (`#token=`), which browsers do not send.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh token: 32 random bytes, base64url (43 characters). */
export function newConsoleToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The bearer credential of an `Authorization` header (RFC 6750 §2.1), or undefined. */
export function bearerTokenOf(header: string | undefined): string | undefined {
  const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(header ?? '');
  return match?.[1];
}

/** Whether `presented` is `expected`, in time independent of where they differ. */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(expected), digest(presented));
}
