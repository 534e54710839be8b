/**
 * Append-only lists kept in the blob store as hash-linked chunks (`{ prev, items }`), so a
 * workflow can name a whole list (a model transcript, the steps of earlier runs) by the SHA-256
 * of its newest chunk, and hand on only what is new. The head digest commits to every item
 * before it, like a hash chain.
 *
 * Reading walks back from the head to the first chunk; recently read lists are cached in memory
 * by head, so a worker that appends to a list it read pays for the new chunk only.
 *
 * `appendAhead` names the new head before its chunk is stored (the head is the chunk's SHA-256),
 * so work that needs only the name goes on while the store writes (issue 17: a file store's put
 * is five file-system round trips). A read in this process of a head still being written waits
 * for the write; the caller awaits the write before the head leaves the process.
 */
import { z } from 'zod';
import { DataPlaneError } from '../errors';
import { sha256Hex, type BlobStore } from './blob-store';

const ChainLinkSchema = z.strictObject({
  v: z.literal(1),
  kind: z.string(),
  prev: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  items: z.array(z.unknown()),
});

export class BlobChains {
  private readonly cache = new Map<string, readonly unknown[]>();
  /** Heads whose chunk `appendAhead` is still writing (settles, never rejects, when the write ends). */
  private readonly writing = new Map<string, Promise<void>>();

  /** @param maxCached how many lists (by head) stay in memory */
  constructor(
    private readonly blobs: BlobStore,
    private readonly maxCached = 256,
  ) {}

  private remember(head: string, items: readonly unknown[]): void {
    this.cache.delete(head);
    this.cache.set(head, items);
    while (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
  }

  /**
   * Appends `items` after the list whose head is `prev` (null: a new list) and returns the new
   * head. `kind` names what the list holds; reading a head as another kind is refused.
   */
  async append(kind: string, prev: string | null, items: readonly unknown[]): Promise<string> {
    const { sha256 } = await this.blobs.put(JSON.stringify({ v: 1, kind, prev, items }));
    const before = prev === null ? [] : this.cache.get(prev);
    if (before !== undefined) this.remember(sha256, [...before, ...items]);
    return sha256;
  }

  /**
   * As `append`, but the new head comes back at once (the SHA-256 of the chunk's JSON bytes, the
   * name the store gives it) with `written`, which settles when the chunk is stored and rejects
   * as `append` would (then the head is forgotten again). The head must not leave this process
   * (an activity's result, another worker) before `written` resolved. `written` is marked
   * handled: a caller that stops on another error before awaiting it leaves no unhandled rejection.
   * @throws (through `written`) what the blob store's `put` throws; DataPlaneError ERR_BLOB_CORRUPT
   *   when the store names the chunk otherwise
   */
  appendAhead(kind: string, prev: string | null, items: readonly unknown[]): { head: string; written: Promise<void> } {
    const json = JSON.stringify({ v: 1, kind, prev, items });
    const head = sha256Hex(json);
    const before = prev === null ? [] : this.cache.get(prev);
    if (before !== undefined) this.remember(head, [...before, ...items]);
    const written = this.blobs.put(json).then(({ sha256 }) => {
      if (sha256 !== head) throw new DataPlaneError('ERR_BLOB_CORRUPT', `the blob store named a ${kind} chunk ${sha256}, not its SHA-256 ${head}`, { details: { sha256, expected: head } });
    });
    const settled = written.then(
      () => undefined,
      () => {
        // Not stored: nothing in this process may read the head as if it were.
        this.cache.delete(head);
      },
    );
    this.writing.set(head, settled);
    void settled.then(() => {
      if (this.writing.get(head) === settled) this.writing.delete(head);
    });
    return { head, written };
  }

  /** Every item of the list whose head is `head`, oldest first (empty for null). */
  async read<T>(kind: string, head: string | null): Promise<T[]> {
    if (head === null) return [];
    // A head this process is still writing is read once written (or found missing if that failed).
    const pending = this.cache.has(head) ? undefined : this.writing.get(head);
    if (pending !== undefined) await pending;
    const cached = this.cache.get(head);
    if (cached !== undefined) {
      this.remember(head, cached);
      return cached as T[];
    }
    const links: unknown[][] = [];
    let at: string | null = head;
    let base: readonly unknown[] = [];
    while (at !== null) {
      const hit = this.cache.get(at);
      if (hit !== undefined) {
        base = hit;
        break;
      }
      const parsed = ChainLinkSchema.safeParse(JSON.parse((await this.blobs.get(at)).toString('utf8')));
      if (!parsed.success || parsed.data.kind !== kind) {
        throw new DataPlaneError('ERR_BLOB_CORRUPT', `blob ${at} is not a link of a ${kind} list`, { details: { sha256: at, kind } });
      }
      links.push(parsed.data.items);
      at = parsed.data.prev;
    }
    const items = [...base];
    for (let i = links.length - 1; i >= 0; i -= 1) items.push(...(links[i] as unknown[]));
    this.remember(head, items);
    return items as T[];
  }
}
