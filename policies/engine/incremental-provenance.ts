/**
 * A task's provenance index kept by the worker and extended step by step, instead of rebuilt from
 * every earlier output at each policy check (which made a check's cost grow with the step count:
 * the atoms of all earlier outputs were extracted again each time).
 *
 * The untrusted part (`ProvenanceIndex.tools`) is held per task and extended with each new
 * output; the user's part, a pure function of their words and declared values, is held by
 * content. An entry is a hint, never an authority: it is used only when the outputs it holds are,
 * in order and by content (a digest over the content keys of all of them), the first outputs of
 * the check at hand; anything else (another task under the same key, a retry or reset with other
 * outputs, a replay, an entry a concurrent check extended meanwhile) gets an index built afresh.
 * So an index answered from here is, atom for atom and character for character, the index
 * `buildProvenanceIndex` builds from the same outputs (test/policies/incremental-provenance.test.ts
 * compares them on random step sequences).
 *
 * Memory is bounded: entries go least recently used first once their indexed characters pass
 * `maxChars` or their count passes `maxTasks`.
 *
 * Pure (no Node APIs, no clock): the keys and the digest come from the caller (activities/check-policy.ts
 * keys an output by its JSON and digests with SHA-256).
 */
import { indexUserValues, type IndexedTexts } from './provenance';

/** One untrusted output as the index takes it: a key naming its content, and its index (`indexToolOutput`). */
export interface UntrustedPart {
  /** Equal keys mean equal outputs (e.g. `json:<its JSON>`, or a claim check's digest). */
  key: string;
  /** Its index (`indexToolOutput`), asked for only when the entry does not hold it; undefined for an output holding no string or number (`hasLeaves`). */
  load: () => IndexedTexts | undefined | Promise<IndexedTexts | undefined>;
}

/** The untrusted outputs of one task so far, indexed together. */
class ToolIndexEntry {
  /** How many outputs it holds, and the digest of their keys (`keysDigest`). */
  count = 0;
  digest = '';
  private readonly atoms = new Set<string>();
  private readonly urlPrefixes = new Set<string>();
  /** The indexed texts of the outputs holding any text, joined as `indexTexts` joins texts (` \u0000 `). */
  private body = '';
  private texts = 0;
  chars = 0;

  add(part: IndexedTexts | undefined): void {
    this.count += 1;
    // An output with no string or number: `indexTexts` of all outputs has no place for it.
    if (part === undefined) return;
    const inner = part.text.slice(1, -1);
    this.body = this.texts === 0 ? inner : `${this.body} \u0000 ${inner}`;
    this.texts += 1;
    this.chars += inner.length + 3;
    for (const a of part.atoms) {
      if (!this.atoms.has(a)) this.chars += a.length;
      this.atoms.add(a);
    }
    for (const p of part.urlPrefixes) this.urlPrefixes.add(p);
  }

  /** A copy: later extensions of this entry do not change it. */
  view(): IndexedTexts {
    return { atoms: new Set(this.atoms), text: ` ${this.body} `, urlPrefixes: [...this.urlPrefixes] };
  }
}

export interface ProvenanceIndexCacheOptions {
  /** Indexed characters (texts, atoms, keys) kept over all tasks; default 64 Mi. */
  maxChars?: number;
  /** Tasks kept; default 1,024. */
  maxTasks?: number;
  /** A collision-resistant digest of a text (SHA-256); default: the text itself (tests). */
  digest?: (text: string) => string;
  /** Users' indexes kept (by their words and values); default 256. */
  maxUsers?: number;
}

/** What a lookup did, for tests and the bench: how many outputs it indexed now, and whether it started afresh. */
export interface ToolIndexLookup {
  index: IndexedTexts;
  indexedNow: number;
  fresh: boolean;
}

export class ProvenanceIndexCache {
  private readonly tasks = new Map<string, ToolIndexEntry>();
  private readonly users = new Map<string, IndexedTexts>();
  private chars = 0;
  private readonly maxChars: number;
  private readonly maxTasks: number;
  private readonly maxUsers: number;
  private readonly digest: (text: string) => string;

  constructor(options: ProvenanceIndexCacheOptions = {}) {
    this.digest = options.digest ?? ((text) => text);
    this.maxChars = options.maxChars ?? 64 * 1024 * 1024;
    this.maxTasks = options.maxTasks ?? 1024;
    this.maxUsers = options.maxUsers ?? 256;
  }

  /**
   * The index of `parts` (a task's untrusted outputs, oldest first) as `buildProvenanceIndex`
   * gives its `tools`: the task's entry extended with the parts it does not hold yet, or, when the
   * entry holds anything but a prefix of `parts`, a new entry of all of them. `taskKey` only
   * places the entry (e.g. the workflow id); it decides nothing.
   */
  async toolOutputs(taskKey: string, parts: readonly UntrustedPart[]): Promise<ToolIndexLookup> {
    const seen = this.tasks.get(taskKey);
    const start = seen !== undefined && seen.count <= parts.length && seen.digest === this.keysDigest(parts, seen.count) ? seen.count : 0;
    const loaded: (IndexedTexts | undefined)[] = [];
    for (let i = start; i < parts.length; i += 1) loaded.push(await (parts[i] as UntrustedPart).load());
    // Synchronous from here on. A check of the same task may have changed the entry while this
    // one loaded: extend only the entry the plan was made on, still as it was.
    const now = this.tasks.get(taskKey);
    let entry: ToolIndexEntry;
    if (start > 0 && now === seen && now !== undefined && now.count === start) {
      entry = now;
      this.chars -= entry.chars;
    } else if (start === 0) {
      if (now !== undefined) this.chars -= now.chars;
      entry = new ToolIndexEntry();
    } else {
      // The entry moved under this check: index everything for this check alone.
      const alone = new ToolIndexEntry();
      for (const part of parts) alone.add(await part.load());
      return { index: alone.view(), indexedNow: parts.length, fresh: true };
    }
    for (const part of loaded) entry.add(part);
    const digest = this.keysDigest(parts, parts.length);
    entry.chars += digest.length - entry.digest.length;
    entry.digest = digest;
    this.tasks.delete(taskKey);
    this.tasks.set(taskKey, entry);
    this.chars += entry.chars;
    this.evict(taskKey);
    return { index: entry.view(), indexedNow: parts.length - start, fresh: start === 0 };
  }

  /** The digest of the first `count` parts' keys, each length-prefixed (no two lists of keys give the same text). */
  private keysDigest(parts: readonly UntrustedPart[], count: number): string {
    let text = '';
    for (let i = 0; i < count; i += 1) {
      const key = (parts[i] as UntrustedPart).key;
      text += `${key.length}:${key}`;
    }
    return this.digest(text);
  }

  /** The user's part of the index (`indexUserValues`), kept by content. */
  userValues(intent: string, taskValues: readonly unknown[]): IndexedTexts {
    const key = JSON.stringify([intent, taskValues]);
    let index = this.users.get(key);
    if (index === undefined) {
      index = indexUserValues(intent, taskValues);
      while (this.users.size >= this.maxUsers) this.users.delete(this.users.keys().next().value as string);
    } else this.users.delete(key);
    this.users.set(key, index);
    return { atoms: new Set(index.atoms), text: index.text, urlPrefixes: [...index.urlPrefixes] };
  }

  /** Tasks and characters held (for tests of the bound). */
  get size(): { tasks: number; chars: number } {
    return { tasks: this.tasks.size, chars: this.chars };
  }

  private evict(keep: string): void {
    for (const [key, entry] of this.tasks) {
      if (this.chars <= this.maxChars && this.tasks.size <= this.maxTasks) break;
      if (key === keep) continue;
      this.tasks.delete(key);
      this.chars -= entry.chars;
    }
  }
}
