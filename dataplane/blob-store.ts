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
import { promisify } from 'node:util';
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

/**
 * Blobs up to this size (a data-flow step's transcript chunk, a claim-checked argument) are stored
 * with the same system calls made on the calling thread: for a few KiB they take less time than
 * handing each of the five (stat, open, write, close, rename) to libuv's thread pool and waiting
 * for the answer (issue 17: 0.3 vs 1.0 ms per put on the bench machine, more when the worker is
 * busy). Larger ones go through the thread pool, so a slow disk never stalls the event loop long.
 * The two fsyncs of a new blob under `fsync: true` (its file, then its shard folder after the
 * rename) go to the thread pool either way: they cost ~3 ms each on the bench machine.
 */
export const SYNC_PUT_MAX_BYTES = 64 * 1024;

/**
 * The file calls a put makes, either way; `stat` is undefined for a missing file. `writeDurable`
 * creates the file exclusively and returns once its bytes are on the disk (fsync), `syncFolder`
 * once a rename in the folder is: without both, a crash can leave a full-size file of other bytes
 * (zeros) under a blob's name (ext4 and XFS may show a renamed, unflushed file at its full size).
 */
interface PutCalls {
  stat(path: string): fs.Stats | undefined | Promise<fs.Stats | undefined>;
  readFile(path: string): Buffer | Promise<Buffer>;
  writeDurable(path: string, bytes: Uint8Array, mode: number, fsync: boolean): void | Promise<void>;
  syncFolder(path: string): void | Promise<void>;
  rename(from: string, to: string): void | Promise<void>;
  mkdir(path: string, options: fs.MakeDirectoryOptions): unknown;
  rm(path: string, options: fs.RmOptions): void | Promise<void>;
}

/** fsync on the thread pool: a few ms of waiting on the disk must not stall the event loop. */
const fsyncOnPool = promisify(fs.fsync);

const syncCalls: PutCalls = {
  stat: (path) => fs.statSync(path, { throwIfNoEntry: false }),
  readFile: (path) => fs.readFileSync(path),
  writeDurable: async (path, bytes, mode, fsync) => {
    const fd = fs.openSync(path, 'wx', mode);
    try {
      fs.writeFileSync(fd, bytes);
      if (fsync) await fsyncOnPool(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  syncFolder: async (path) => {
    const fd = fs.openSync(path, 'r');
    try {
      await fsyncOnPool(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  rename: fs.renameSync,
  mkdir: fs.mkdirSync,
  rm: fs.rmSync,
};

const threadPoolCalls: PutCalls = {
  stat: (path) => fsp.stat(path),
  readFile: (path) => fsp.readFile(path),
  writeDurable: async (path, bytes, mode, fsync) => {
    const handle = await fsp.open(path, 'wx', mode);
    try {
      await handle.writeFile(bytes);
      if (fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  },
  syncFolder: async (path) => {
    const handle = await fsp.open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  rename: fsp.rename,
  mkdir: fsp.mkdir,
  rm: fsp.rm,
};

/** Blobs as files `<dir>/<aa>/<sha256>` (mode 0444). */
export class FileBlobStore implements BlobStore {
  readonly description: string;

  /**
   * @param dir the store's folder (shards `<dir>/<2 hex>/<sha256>`)
   * @param options.fsync also survive a power cut: every new blob's file and its shard folder are
   *   fsynced before `put` resolves (~3 ms each, twice, on the bench machine). Default false: a put
   *   survives a killed process (the rename is atomic), the custody ledger's default durability too
   *   (custody/ledger.ts `synchronous: normal`); after a power cut a blob may be damaged, which `get`
   *   refuses (ERR_BLOB_CORRUPT) and the next `put` of the same bytes repairs.
   */
  constructor(
    private readonly dir: string,
    private readonly options: { fsync?: boolean } = {},
  ) {
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
    const calls = bytes.byteLength <= SYNC_PUT_MAX_BYTES ? syncCalls : threadPoolCalls;
    try {
      const stat = await calls.stat(target);
      // A file of the right size is the blob only if its bytes are: a damaged one (a flipped byte,
      // zeros a crash left) is replaced below, atomically, so the same bytes stored again repair it.
      if (stat !== undefined && stat.isFile() && stat.size === bytes.byteLength && sha256Hex(await calls.readFile(target)) === sha256) {
        return { sha256, bytes: bytes.byteLength };
      }
    } catch {
      // not stored yet, or unreadable (or its shard is no folder: the write says why)
    }
    const shard = join(this.dir, sha256.slice(0, 2));
    // A temporary name of its own: two workers storing the same blob must not share one.
    const temp = `${target}.${randomUUID()}.tmp`;
    try {
      try {
        await calls.writeDurable(temp, bytes, 0o444, this.options.fsync === true);
      } catch (error) {
        // No shard folder yet (or it was removed): made, written once more. Made only then, so a
        // put into an existing shard makes no mkdir call at all.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await calls.mkdir(shard, { recursive: true, mode: 0o700 });
        await calls.writeDurable(temp, bytes, 0o444, this.options.fsync === true);
      }
      await calls.rename(temp, target);
      if (this.options.fsync === true) await calls.syncFolder(shard);
    } catch (cause) {
      try {
        await calls.rm(temp, { force: true });
      } catch {
        // A temporary file that cannot even be looked for (its folder is not one) must not hide the cause.
      }
      throw new DataPlaneError('ERR_SHARED_STORAGE', `cannot store blob ${sha256} in ${this.dir}: ${(cause as Error).message}`, { cause, retryable: true });
    }
    return { sha256, bytes: bytes.byteLength };
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
