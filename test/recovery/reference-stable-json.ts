/**
 * `stableJson` (recovery/call-key.ts) as first written, kept as the reference its faster form is
 * held to: call keys and the policy precheck digest are recomputed from its text when recorded
 * histories replay, so the text may never change.
 */
export function referenceStableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : referenceStableJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${referenceStableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
