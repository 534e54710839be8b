/**
 * Append-only lists kept in the blob store as hash-linked chunks (`{ prev, items }`), so a
 * workflow can name a whole list (a model transcript, the steps of earlier runs) by the SHA-256
 * of its newest chunk, and hand on only what is new. The head digest commits to every item
 * before it, like a hash chain.
 *
 * Reading walks back from the head to the first chunk; recently read lists are cached in memory
 * by head, so a worker that appends to a list it read pays for the new chunk only.
 */
import { z } from 'zod';
import { DataPlaneError } from '../errors';
import type { BlobStore } from './blob-store';

const ChainLinkSchema = z.strictObject({
  v: z.literal(1),
  kind: z.string(),
  prev: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  items: z.array(z.unknown()),
});

export class BlobChains {
  private readonly cache = new Map<string, readonly unknown[]>();

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

  /** Every item of the list whose head is `head`, oldest first (empty for null). */
  async read<T>(kind: string, head: string | null): Promise<T[]> {
    if (head === null) return [];
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
