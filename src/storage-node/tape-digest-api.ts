import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FerryError } from '../util/errors.ts';
import {
  MAX_TAPE_DIGEST_PIECES,
  type TapeDigestRequest,
  type TapeDigestResult,
  type TapeDigestSource,
} from '../tape/digest.ts';
import { SnapshotApiClient } from './api-client.ts';

/**
 * `POST /v1/tapes/digest` on a node's management API: SHA-256 of cartridge data blocks, read on
 * the node that serves the tapes (docs/on-tape-format.md "Verify"). The route, its body schema
 * and the client the backup server uses.
 */

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const piece = z
  .object({
    barcode: z.string().min(1).max(32).optional(),
    lun: z.number().int().min(0).max(0xffff).optional(),
    fromBlock: count,
    blocks: count,
    bytes: count,
  })
  .strict()
  .refine((p) => (p.barcode === undefined) !== (p.lun === undefined), {
    message: 'give exactly one of barcode and lun',
  });

export const TapeDigestBody = z
  .object({
    pieces: z.array(piece).min(1).max(MAX_TAPE_DIGEST_PIECES),
    blockBytes: z
      .number()
      .int()
      .min(1)
      .max(16 << 20)
      .optional(),
  })
  .strict();

/** Room for MAX_TAPE_DIGEST_PIECES pieces. */
export const TAPE_DIGEST_BODY_LIMIT = 64 * 1024 + MAX_TAPE_DIGEST_PIECES * 160;

/**
 * Register the route. `tapes` is undefined on a node that serves no tapes (the route answers
 * 404 ERR_NOT_FOUND). `parse` checks a body and throws ERR_BAD_REQUEST naming the field.
 */
export function registerTapeDigestRoute(
  app: FastifyInstance,
  tapes: TapeDigestSource | undefined,
  nodeName: string,
  parse: <T>(schema: z.ZodType<T>, v: unknown, what: string) => T,
): void {
  app.post('/v1/tapes/digest', { bodyLimit: TAPE_DIGEST_BODY_LIMIT }, async (req) => {
    const body = parse(TapeDigestBody, req.body, 'body');
    if (!tapes) throw new FerryError('ERR_NOT_FOUND', `${nodeName} serves no tape library or drive`);
    return tapes.digest(body);
  });
}

/** The node API client with the tape digest (the backup server's verify on a Ferry library node). */
export class TapeNodeClient extends SnapshotApiClient {
  tapeDigest(req: TapeDigestRequest): Promise<TapeDigestResult> {
    return this.call('POST', '/v1/tapes/digest', req);
  }
}
