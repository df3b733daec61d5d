import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FerryError, UsageError } from '../util/errors.ts';
import type { ChangedBlocks } from '../snapshot/cbt.ts';
import type { LunInfo } from './lun-registry.ts';
import {
  changedExtents,
  type BlockExtent,
  type ChangedExtents,
  type ChangeMark,
  type ChangeTracking,
  type NodeControl,
  type NodeDigest,
  type SnapshotRecord,
  type SnapshotRequest,
} from './node-control.ts';

export const DEFAULT_API_URL = 'http://127.0.0.1:8460';

/** The API answered with an error: its `{code, message}` and HTTP status. */
export class SnapshotApiError extends FerryError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

/** "127.0.0.1:8460" or "http://host:port" → a base URL. */
export function parseApiUrl(text: string): URL {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`--api "${text}" is not a URL: use e.g. http://127.0.0.1:8460`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--api "${text}": only http and https`);
  return u;
}

/**
 * NodeControl over the storage node's management API (used by `ferry snapshot` and the backup
 * server). Errors are SnapshotApiErrors carrying the node's own code and message.
 * Uses node:http with no response timeout: a snapshot request may wait out a long quiesce.
 */
export class SnapshotApiClient implements NodeControl {
  readonly base: URL;
  private readonly token: string;

  constructor(base: URL | string, token: string) {
    this.base = typeof base === 'string' ? parseApiUrl(base) : base;
    this.token = token;
  }

  listLuns(): Promise<LunInfo[]> {
    return this.call('GET', '/v1/luns');
  }
  createLun(opts: { sizeBytes: number; blockSize?: number }): Promise<LunInfo> {
    return this.call('POST', '/v1/luns', { size: opts.sizeBytes, blockSize: opts.blockSize });
  }
  deleteLun(lun: number): Promise<void> {
    return this.call('DELETE', `/v1/luns/${lun}`);
  }
  createSnapshot(lun: number, opts: SnapshotRequest = {}): Promise<SnapshotRecord> {
    const { signal, ...body } = opts;
    return this.call('POST', `/v1/luns/${lun}/snapshots`, body, signal);
  }
  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    try {
      return await this.call<SnapshotRecord>('GET', `/v1/snapshots/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof SnapshotApiError && e.code === 'ERR_SNAPSHOT_NOT_FOUND') return undefined;
      throw e;
    }
  }
  listSnapshots(lun?: number): Promise<SnapshotRecord[]> {
    return this.call('GET', `/v1/snapshots${lun === undefined ? '' : `?lun=${lun}`}`);
  }
  deleteSnapshot(id: string): Promise<void> {
    return this.call('DELETE', `/v1/snapshots/${encodeURIComponent(id)}`);
  }
  async changedSince(lun: number, since: string, opts: { until?: string } = {}): Promise<ChangedExtents> {
    const q = new URLSearchParams({ since });
    if (opts.until !== undefined) q.set('until', opts.until);
    return changedExtents(await this.call<ChangedBlocks>('GET', `/v1/luns/${lun}/changed?${q}`));
  }
  markChanges(lun: number): Promise<ChangeMark> {
    return this.call('POST', `/v1/luns/${lun}/changes/mark`, {});
  }
  changeTracking(lun: number): Promise<ChangeTracking> {
    return this.call('GET', `/v1/luns/${lun}/changes`);
  }
  digest(lun: number, extents: readonly BlockExtent[]): Promise<NodeDigest> {
    return this.call('POST', `/v1/luns/${lun}/digest`, { extents });
  }
  activity(lun: number): Promise<{ lastWriteMsAgo: number | null }> {
    return this.call('GET', `/v1/luns/${lun}/activity`);
  }

  /**
   * HTTP bytes this client sent and received (request line, headers and bodies), for the "no data through the server"
   * figure.
   */
  bytesOnWire = 0;

  protected call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    this.bytesOnWire += method.length + url.pathname.length + url.search.length + 200 + (payload?.length ?? 0);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          signal,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          this.bytesOnWire += res.rawHeaders.reduce((n, h) => n + h.length + 2, 16);
          res.on('data', (c: Buffer) => {
            this.bytesOnWire += c.length;
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            if (status >= 200 && status < 300) return resolve(json as T);
            const e = (json ?? {}) as { code?: unknown; message?: unknown };
            const code = typeof e.code === 'string' ? e.code : 'ERR_HTTP';
            const message =
              typeof e.message === 'string'
                ? e.message
                : `${method} ${url.pathname}: HTTP ${status} ${text.slice(0, 200)}`;
            reject(new SnapshotApiError(status, code, message));
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        // Dropping the request is how a wait on the node is canceled (the API stops waiting).
        if (signal?.aborted) return reject(new FerryError('ERR_CANCELED', `${method} ${url.pathname} canceled`));
        reject(
          new FerryError(
            'ERR_API_UNREACHABLE',
            `cannot reach the storage node API at ${this.base.origin}: ${e.code ?? e.message}`,
          ),
        );
      });
      req.end(payload);
    });
  }
}
