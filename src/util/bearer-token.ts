import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';

/**
 * Bearer tokens for the node API and the backup server's API (RFC 6750 2.1): one file, one
 * check. No heavy imports, so a CLI client can read its token without loading a server.
 */

/** Read a bearer token file: its first line, at least 16 characters. */
export async function readTokenFile(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read token file ${path}: ${e.message}`);
  });
  const token = text.split(/\r?\n/)[0].trim();
  if (token.length < 16)
    throw new UsageError(`token file ${path}: the token (its first line) needs at least 16 characters`);
  return token;
}

/** Does an `Authorization` header carry `token`? Compared as digests: equal length, constant time. */
export function bearerTokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The 401 body of both APIs: what is wrong and where the right token is. */
export const UNAUTHORIZED = {
  code: 'ERR_UNAUTHORIZED',
  message:
    'unauthorized: missing or wrong bearer token: use the token file the service was started with ' +
    '(--token-file or FERRY_TOKEN_FILE; ferry up writes ferry-data/server.token and node.token)',
} as const;
