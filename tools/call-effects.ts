/**
 * What one call does, read off its tool's descriptor and its arguments: the recipients, payees,
 * amounts (with currency), URLs and hosts, paths and SQL statements the call acts on, each with
 * the argument (JSON pointer) it came from. These are values the tool acts on verbatim, so
 * reading them from the arguments is measuring, not trusting the agent; what only the executor
 * can know (rows a statement changes, with cascades and triggers) is measured where it is applied
 * (sandbox/policy-gate.ts) and listed as `pending` here.
 *
 * Pure: workflow code may import this file.
 */
import { z } from 'zod';
import { leavesAt, valuesAt } from './argument-values';
import { PATH_ACCESS, RECIPIENT_KINDS, PAYEE_KINDS, type ToolDescriptor } from './tool-descriptor';

export const CallRecipientSchema = z.strictObject({ value: z.string(), kind: z.enum(RECIPIENT_KINDS), pointer: z.string() });
export const CallPayeeSchema = z.strictObject({ value: z.string(), kind: z.enum(PAYEE_KINDS), pointer: z.string() });
export const CallAmountSchema = z.strictObject({ value: z.number().min(0), currency: z.string().optional(), pointer: z.string() });
export const CallUrlSchema = z.strictObject({ url: z.string(), host: z.string(), method: z.string(), pointer: z.string() });
export const CallHostSchema = z.strictObject({ host: z.string(), pointer: z.string() });
export const CallPathSchema = z.strictObject({ path: z.string(), access: z.enum(PATH_ACCESS), pointer: z.string() });
export const CallSqlSchema = z.strictObject({ database: z.string(), statement: z.string(), access: z.enum(['read', 'write']), pointer: z.string() });

/** The effects a call's arguments declare. Every list may be empty. */
export const CallEffectsSchema = z.strictObject({
  recipients: z.array(CallRecipientSchema),
  payees: z.array(CallPayeeSchema),
  amounts: z.array(CallAmountSchema),
  urls: z.array(CallUrlSchema),
  hosts: z.array(CallHostSchema),
  paths: z.array(CallPathSchema),
  sql: z.array(CallSqlSchema),
  /** Declared effects whose argument is missing or malformed: rules about them apply (fail closed). */
  unreadable: z.array(z.string()),
});
export type CallEffects = z.infer<typeof CallEffectsSchema>;

/** `https://Example.com:8443/a` → `example.com:8443`, lower-case, IPv6 without brackets; undefined if not http(s). */
export function hostOfUrl(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/** An amount argument as a number: 12.5, "12.50", "$1,200.00", "1 200,00"? (only `.` decimals); undefined otherwise. */
export function amountValue(raw: unknown, minorUnits: boolean): number | undefined {
  let value: number | undefined;
  if (typeof raw === 'number' && Number.isFinite(raw)) value = raw;
  else if (typeof raw === 'string') {
    const cleaned = raw.trim().replace(/^[$€£]/, '').replace(/^[A-Za-z]{3}\s*(?=\d)/, '').replace(/\s*[A-Za-z]{3}$/, '').replace(/,/g, '');
    if (/^\d+(\.\d+)?$/.test(cleaned)) value = Number(cleaned);
  }
  if (value === undefined || value < 0) return undefined;
  return minorUnits ? value / 100 : value;
}

/** Signs `amountValue` reads before a number, and the currency each stands for (`$`: USD, policies/README.md). */
const AMOUNT_SIGNS: Readonly<Record<string, string>> = { $: 'USD', '€': 'EUR', '£': 'GBP' };

/**
 * The currency an amount string states ("20 KWD" → KWD, "$20" → USD, "EUR 20" → EUR), upper
 * case, or undefined when it states none. A currency is a *currency reading* (policies/README.md,
 * "Amounts and currencies"): a three-letter code is returned as written, whether or not Warden
 * knows it, so it never matches money the user gave in another currency.
 */
export function currencyWrittenIn(raw: string): string | undefined {
  const text = raw.trim();
  const sign = AMOUNT_SIGNS[text.charAt(0)];
  if (sign !== undefined) return sign;
  const code = /^([A-Za-z]{3})\s*\d/.exec(text)?.[1] ?? /\d\s*([A-Za-z]{3})$/.exec(text)?.[1];
  return code?.toUpperCase();
}

/** The effects `descriptor` declares for a call with `args`. Never throws. */
export function callEffectsOf(descriptor: ToolDescriptor, args: Record<string, unknown>): CallEffects {
  const e = descriptor.effects;
  const out: CallEffects = { recipients: [], payees: [], amounts: [], urls: [], hosts: [], paths: [], sql: [], unreadable: [] };
  const strings = (pointer: string) => leavesAt(args, pointer).filter((l): l is { pointer: string; value: string } => typeof l.value === 'string' && l.value.trim() !== '');

  for (const ref of e.recipients) {
    const found = strings(ref.arg);
    if (found.length === 0 && valuesAt(args, ref.arg).length > 0) out.unreadable.push(`recipients ${ref.arg}`);
    for (const leaf of found) {
      // "a@x.org, b@y.org" in one argument is two recipients.
      for (const part of leaf.value.split(/[,;]/)) if (part.trim() !== '') out.recipients.push({ value: part.trim(), kind: ref.kind, pointer: leaf.pointer });
    }
  }
  for (const ref of e.payees) {
    const found = leavesAt(args, ref.arg);
    if (found.length === 0 && valuesAt(args, ref.arg).length > 0) out.unreadable.push(`payees ${ref.arg}`);
    for (const leaf of found) out.payees.push({ value: String(leaf.value), kind: ref.kind, pointer: leaf.pointer });
  }
  for (const ref of e.amounts) {
    const entries = leavesAt(args, ref.arg);
    if (entries.length === 0) {
      out.unreadable.push(`amounts ${ref.arg}`);
      continue;
    }
    let declared: string | undefined;
    if (typeof ref.currency === 'string') declared = ref.currency.trim().toUpperCase();
    else if (ref.currency !== undefined) {
      const [code] = valuesAt(args, ref.currency.arg);
      // Left out or empty: no currency (the tool's default, which Warden cannot know). Anything
      // else that is not a three-letter code ("bitcoin", 978) is kept as written, unreadable.
      if (code !== undefined && code !== null && String(code).trim() !== '') declared = String(code).trim().toUpperCase();
    }
    for (const leaf of entries) {
      const value = amountValue(leaf.value, ref.minorUnits);
      if (value === undefined) {
        out.unreadable.push(`amounts ${leaf.pointer}`);
        continue;
      }
      // "20 KWD" / "€20": the amount's own currency; one that disagrees with the declared one leaves the currency unreadable.
      const written = typeof leaf.value === 'string' ? currencyWrittenIn(leaf.value) : undefined;
      const currency = written === undefined ? declared : declared === undefined || declared === written ? written : `${declared}/${written}`;
      out.amounts.push({ value, ...(currency === undefined ? {} : { currency }), pointer: leaf.pointer });
    }
  }
  for (const ref of e.urls) {
    const [rawMethod] = ref.method === undefined ? [] : valuesAt(args, ref.method);
    const method = typeof rawMethod === 'string' && rawMethod.trim() !== '' ? rawMethod.trim().toUpperCase() : 'GET';
    for (const leaf of strings(ref.arg)) {
      const host = hostOfUrl(leaf.value);
      if (host === undefined) out.unreadable.push(`urls ${leaf.pointer}`);
      else out.urls.push({ url: leaf.value, host, method, pointer: leaf.pointer });
    }
  }
  for (const ref of e.hosts) for (const leaf of strings(ref)) out.hosts.push({ host: leaf.value.trim().toLowerCase(), pointer: leaf.pointer });
  for (const ref of e.paths) {
    const found = strings(ref.arg);
    if (found.length === 0 && ref.default !== undefined && valuesAt(args, ref.arg).length === 0) out.paths.push({ path: ref.default, access: ref.access, pointer: ref.arg });
    else if (found.length === 0) out.unreadable.push(`paths ${ref.arg}`);
    for (const leaf of found) out.paths.push({ path: leaf.value, access: ref.access, pointer: leaf.pointer });
  }
  for (const ref of e.sql) {
    const [database] = valuesAt(args, ref.database);
    const [statement] = valuesAt(args, ref.statement);
    if (typeof database !== 'string' || typeof statement !== 'string') out.unreadable.push(`sql ${ref.statement}`);
    else out.sql.push({ database, statement, access: ref.access, pointer: ref.statement });
  }
  return out;
}
