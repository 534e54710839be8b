/**
 * Finds credential material where it must never be: Temporal histories, logs, tool outputs,
 * prompts. Tests run every run's history and log through `findSecretsIn` and expect nothing.
 *
 * What counts as a secret: any compact JWS whose header decodes to a JSON object with `alg`
 * (a token of any kind), any private JWK member `"d"` (OKP/EC private scalar), any PEM private
 * key. Base64 strings (Temporal payload `data`) and byte arrays are decoded and searched too.
 */

const JWS_PATTERN = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
/** `"d":"<base64url>"`, also inside JSON that was itself stringified (`\"d\":\"...\"`). */
const PRIVATE_JWK_D_PATTERN = /\\*"d\\*"\s*:\s*\\*"([A-Za-z0-9_-]{40,})\\*"/g;
const PEM_PRIVATE_PATTERN = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g;
const BASE64_PATTERN = /^[A-Za-z0-9+/]{16,}={0,2}$/;
const MAX_DECODE_DEPTH = 3;

/** Every token, private JWK scalar or PEM private key found in `text` (empty when clean). */
export function findSecrets(text: string): string[] {
  return findIn(text, 0);
}

/** `findSecrets` over any JSON-able value (strings, byte arrays and base64 payloads included). */
export function findSecretsIn(value: unknown): string[] {
  const found = new Set<string>();
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const s of findIn(v, 0)) found.add(s);
    } else if (v instanceof Uint8Array) {
      for (const s of findIn(Buffer.from(v).toString('utf8'), 1)) found.add(s);
    } else if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return;
      seen.add(v);
      for (const item of Array.isArray(v) ? v : Object.entries(v).flat()) walk(item);
    }
  };
  walk(value);
  return [...found];
}

/** Throws (without printing the secrets) when `value` holds any. */
export function assertNoSecrets(value: unknown, where: string): void {
  const found = findSecretsIn(value);
  if (found.length > 0) {
    throw new Error(`${where}: ${found.length} secret(s) found: ${found.map(describeSecret).join(', ')}`);
  }
}

/** `text` with every secret replaced by a short description (for logs). */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of findSecrets(text)) out = out.split(secret).join(`[redacted ${describeSecret(secret)}]`);
  return out;
}

/** A non-secret label: the kind and length, e.g. "JWS(412 chars)". */
export function describeSecret(secret: string): string {
  if (secret.startsWith('eyJ')) return `JWS(${secret.length} chars)`;
  if (secret.startsWith('-----BEGIN')) return 'PEM private key';
  return 'private JWK "d"';
}

function findIn(text: string, depth: number): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(JWS_PATTERN)) if (looksLikeJws(match[0])) found.push(match[0]);
  for (const match of text.matchAll(PRIVATE_JWK_D_PATTERN)) found.push(match[1] as string);
  for (const match of text.matchAll(PEM_PRIVATE_PATTERN)) found.push(match[0]);
  if (depth < MAX_DECODE_DEPTH) {
    // Temporal payloads are base64 JSON; search inside any long base64 word.
    for (const word of text.split(/[\s"',:[\]{}\\]+/)) {
      if (word.length >= 16 && word.length % 4 === 0 && BASE64_PATTERN.test(word)) {
        const decoded = Buffer.from(word, 'base64').toString('utf8');
        if (!decoded.includes('\uFFFD')) found.push(...findIn(decoded, depth + 1));
      }
    }
  }
  return found;
}

function looksLikeJws(candidate: string): boolean {
  const [header] = candidate.split('.');
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header as string, 'base64url').toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && 'alg' in parsed;
  } catch {
    return false;
  }
}
