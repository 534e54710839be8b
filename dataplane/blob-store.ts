/**
 * Content-addressed blobs shared by every worker of a deployment: claim-checked tool outputs and
 * arguments, tasks passed by reference, model transcripts, archived steps of long tasks, and the
 * shared copies of task overlays. A blob is named by the SHA-256 of its bytes, so history and
 * custody can hold the digest and anyone can check the bytes against it.
 *
 * Invariants: a stored blob never changes (same name, same bytes); every read is checked against
 * its name (a blob altered on disk is ERR_BLOB_CORRUPT, never returned); a write is atomic (a
 * reader sees the whole blob or none), also when two workers store the same blob at once.
 *
 * `BlobStore` is the seam the shared state layer (PostgreSQL, `warden_blobs`) plugs into; the
 * file implementation lives in the shared folder (see shared-storage.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { DataPlaneError } from '../errors';

export interface StoredBlob {
  sha256: string;
  bytes: number;
}

export interface BlobStore {
  /** Where the blobs live, for messages. */
  readonly description: string;
  /** Stores `content` (a no-op when a blob of that hash exists) and returns its name and size. */
  put(content: Uint8Array | string): Promise<StoredBlob>;
  /** The bytes of blob `sha256`, checked. @throws DataPlaneError ERR_BLOB_MISSING, ERR_BLOB_CORRUPT */
  get(sha256: string): Promise<Buffer>;
  has(sha256: string): Promise<boolean>;
}

const SHA256 = /^[0-9a-f]{64}$/;

export function sha256Hex(content: Uint8Array | string): string {
  return createHash('sha256').update(content).digest('hex');
}

function assertSha(sha256: string): void {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) throw new TypeError(`not a blob name (lower-case hex SHA-256): ${JSON.stringify(sha256)}`);
}

/** Blobs up to this size are stored with synchronous system calls (see `FileBlobStore.#putSmall`). */
export const SYNC_PUT_MAX_BYTES = 64 * 1024;

function storeFailure(sha256: string, dir: string, cause: unknown): DataPlaneError {
  return new DataPlaneError('ERR_SHARED_STORAGE', `cannot store blob ${sha256} in ${dir}: ${(cause as Error).message}`, { cause, retryable: true });
}

/** Blobs as files `<dir>/<aa>/<sha256>` (mode 0444). */
export class FileBlobStore implements BlobStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = dir;
  }

  private pathOf(sha256: string): string {
    assertSha(sha256);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  async put(content: Uint8Array | string): Promise<StoredBlob> {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const sha256 = sha256Hex(bytes);
    const target = this.pathOf(sha256);
    if (bytes.byteLength <= SYNC_PUT_MAX_BYTES) return this.#putSmall(sha256, target, bytes);
    try {
      const stat = await fsp.stat(target);
      if (stat.isFile() && stat.size === bytes.byteLength) return { sha256, bytes: bytes.byteLength };
    } catch {
      // not stored yet
    }
    const shard = sha256.slice(0, 2);
    // A temporary name of its own: two workers storing the same blob must not share one.
    const temp = `${target}.${randomUUID()}.tmp`;
    try {
      try {
        await fsp.writeFile(temp, bytes, { mode: 0o444, flag: 'wx' });
      } catch (error) {
        // No shard folder yet (or it was removed): made, written once more. Made only then, so a
        // put into an existing shard makes no mkdir call at all.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await this.#makeShard(shard);
        await fsp.writeFile(temp, bytes, { mode: 0o444, flag: 'wx' });
      }
      await fsp.rename(temp, target);
    } catch (cause) {
      // A temporary file that cannot even be looked for (its folder is not one) must not hide the cause.
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw storeFailure(sha256, this.dir, cause);
    }
    return { sha256, bytes: bytes.byteLength };
  }

  /**
   * `put` of a small blob (a transcript chunk, a claim-checked argument: one per data-flow step),
   * with the same system calls (stat, an exclusive temporary file, rename) made on the calling
   * thread: for a few KiB they take less time than handing each of them to libuv's thread pool
   * and waiting for the answer (issue 17: 0.3 vs 1.0 ms per put on the bench machine, more when
   * the worker is busy). Atomic as the other path: readers see the whole blob or none.
   */
  #putSmall(sha256: string, target: string, bytes: Uint8Array): StoredBlob {
    const stored = { sha256, bytes: bytes.byteLength };
    try {
      const stat = fs.statSync(target, { throwIfNoEntry: false });
      if (stat !== undefined && stat.isFile() && stat.size === bytes.byteLength) return stored;
    } catch {
      // not stored yet (its shard is no folder: the write says why)
    }
    const shard = sha256.slice(0, 2);
    const temp = `${target}.${randomUUID()}.tmp`;
    try {
      try {
        fs.writeFileSync(temp, bytes, { mode: 0o444, flag: 'wx' });
      } catch (error) {
        // No shard folder yet (or it was removed): made, written once more.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.#makeShardNow(shard);
        fs.writeFileSync(temp, bytes, { mode: 0o444, flag: 'wx' });
      }
      fs.renameSync(temp, target);
    } catch (cause) {
      try {
        fs.rmSync(temp, { force: true });
      } catch {
        // A temporary file that cannot even be looked for (its folder is not one) must not hide the cause.
      }
      throw storeFailure(sha256, this.dir, cause);
    }
    return stored;
  }

  #makeShardNow(shard: string): void {
    fs.mkdirSync(join(this.dir, shard), { recursive: true, mode: 0o700 });
  }

  async #makeShard(shard: string): Promise<void> {
    await fsp.mkdir(join(this.dir, shard), { recursive: true, mode: 0o700 });
  }

  async get(sha256: string): Promise<Buffer> {
    let content: Buffer;
    try {
      content = await fsp.readFile(this.pathOf(sha256));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw cause;
      throw new DataPlaneError('ERR_BLOB_MISSING', `blob ${sha256} is not in the shared folder ${this.dir} (looked in the folder: WARDEN_SHARED_DIR, else the state folder; is it shared by every worker? Workers with WARDEN_DATABASE_URL keep blobs in that database instead)`, {
        details: { sha256 },
        cause,
      });
    }
    if (sha256Hex(content) !== sha256) throw new DataPlaneError('ERR_BLOB_CORRUPT', `blob ${sha256} in ${this.dir} does not match its hash`, { details: { sha256 } });
    return content;
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.pathOf(sha256))).isFile();
    } catch {
      return false;
    }
  }
}

/**
 * A store with a bounded in-memory cache of recently used blobs in front (by total bytes, least
 * recently used first out). Blobs never change, so a cached copy is never stale.
 */
export class CachedBlobStore implements BlobStore {
  private readonly cache = new Map<string, Buffer>();
  private cachedBytes = 0;

  constructor(
    private readonly inner: BlobStore,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  private remember(sha256: string, content: Buffer): void {
    if (content.byteLength > this.maxBytes / 8) return;
    this.cache.delete(sha256);
    this.cache.set(sha256, content);
    this.cachedBytes += content.byteLength;
    for (const [key, value] of this.cache) {
      if (this.cachedBytes <= this.maxBytes) break;
      this.cache.delete(key);
      this.cachedBytes -= value.byteLength;
    }
  }

  async put(content: Uint8Array | string): Promise<StoredBlob> {
    const stored = await this.inner.put(content);
    this.remember(stored.sha256, typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content));
    return stored;
  }

  async get(sha256: string): Promise<Buffer> {
    const hit = this.cache.get(sha256);
    if (hit !== undefined) {
      this.cache.delete(sha256);
      this.cache.set(sha256, hit);
      return hit;
    }
    const content = await this.inner.get(sha256);
    this.remember(sha256, content);
    return content;
  }

  async has(sha256: string): Promise<boolean> {
    return this.cache.has(sha256) || this.inner.has(sha256);
  }
}

/** The blob store of a shared folder: `<sharedDir>/blobs`, cached in memory. */
export function openBlobStore(sharedDir: string): BlobStore {
  return new CachedBlobStore(new FileBlobStore(join(sharedDir, 'blobs')));
}
