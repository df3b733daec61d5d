import { FerryError } from '../util/errors.ts';
import { ThreadedSha256 } from '../util/threaded-sha256.ts';
import { Cartridge } from './cartridge.ts';
import { ObjectKind } from './cartridge-format.ts';

/**
 * SHA-256 of data blocks read straight from cartridge files, where the tapes live (verify on a
 * Ferry library node, docs/on-tape-format.md "Verify"). Each piece names a range of logical
 * block ids of one cartridge and how many of its bytes count; the digest is over the pieces'
 * bytes in the order given, so a set that spans cartridges is one digest of its whole stream.
 *
 * A cartridge is opened read-only on its own file handle, never through a drive: a drive that
 * holds it keeps its position and state, and a changer move that closes the drive's handle
 * does not cut a read short. Whoever asks must keep writers off the cartridge (the backup
 * server's verify job holds its reservation).
 */

/**
 * One cartridge's part of the stream: `bytes` bytes from the start of `blocks` data blocks at logical block id
 * `fromBlock`.
 */
export interface TapeDigestPiece {
  /** The cartridge, by barcode (a library's cartridge, or a stand-alone drive's). */
  barcode?: string;
  /** Or the cartridge in the tape drive at this LUN of the node (a stand-alone drive). */
  lun?: number;
  fromBlock: number;
  blocks: number;
  bytes: number;
}

export interface TapeDigestRequest {
  pieces: TapeDigestPiece[];
  /** When given, every block read must be this long (the pool's tape block size). */
  blockBytes?: number;
}

export interface TapeDigestResult {
  /** Hex SHA-256 of every piece's bytes, concatenated in order. */
  sha256: string;
  bytes: number;
  /** Per piece, in order: the cartridge's barcode and the bytes hashed from it. */
  pieces: Array<{ barcode: string; bytes: number }>;
}

/** Where a piece's cartridge file is, and its barcode. Throws ERR_NOT_FOUND when the node has no such cartridge. */
export type CartridgeLocator = (piece: TapeDigestPiece) => { path: string; barcode: string };

/** What serves `POST /v1/tapes/digest` on a node (src/storage-node/tape-digest.ts over the node's tape LUs). */
export interface TapeDigestSource {
  digest(req: TapeDigestRequest): Promise<TapeDigestResult>;
}

/** Most pieces one request may name. */
export const MAX_TAPE_DIGEST_PIECES = 10_000;
/** Bytes read per file read. */
const READ_BYTES = 4 << 20;

export async function digestCartridgeBlocks(
  req: TapeDigestRequest,
  locate: CartridgeLocator,
): Promise<TapeDigestResult> {
  // On a worker thread: the node's event loop keeps serving its drives' I/O meanwhile.
  const h = new ThreadedSha256(READ_BYTES);
  try {
    const pieces: TapeDigestResult['pieces'] = [];
    let total = 0;
    for (const p of req.pieces) {
      const where = locate(p);
      const cart = await Cartridge.open(where.path, { readOnly: true });
      try {
        const n = await digestPiece(cart, where.barcode, p, req.blockBytes, h);
        pieces.push({ barcode: where.barcode, bytes: n });
        total += n;
      } finally {
        await cart.close();
      }
    }
    return { sha256: await h.digest(), bytes: total, pieces };
  } finally {
    await h.close();
  }
}

function rangeError(barcode: string, why: string): FerryError {
  return new FerryError('ERR_RANGE', `cartridge ${barcode}: ${why}`);
}

/**
 * Check that [fromBlock, fromBlock + blocks) are data blocks (of `blockBytes` if given) and hold at least `bytes`
 * bytes.
 */
function checkRange(cart: Cartridge, barcode: string, p: TapeDigestPiece, blockBytes: number | undefined): void {
  const end = p.fromBlock + p.blocks;
  if (end > cart.objectCount) {
    throw rangeError(barcode, `blocks ${p.fromBlock}–${end - 1} run past its end of data (block ${cart.objectCount})`);
  }
  let room = 0;
  for (let id = p.fromBlock; id < end;) {
    const r = cart.run(cart.runIndexOf(id));
    if (r.kind !== ObjectKind.DATA) throw rangeError(barcode, `block ${id} is a filemark, not a data block`);
    if (blockBytes !== undefined && r.blockLength !== blockBytes) {
      throw rangeError(barcode, `block ${id} is ${r.blockLength} bytes long, not ${blockBytes}`);
    }
    const n = Math.min(r.firstId + r.count, end) - id;
    room += n * r.blockLength;
    id += n;
  }
  if (p.bytes > room)
    throw rangeError(
      barcode,
      `blocks ${p.fromBlock}–${end - 1} hold ${room} bytes, fewer than the ${p.bytes} asked for`,
    );
}

async function digestPiece(
  cart: Cartridge,
  barcode: string,
  p: TapeDigestPiece,
  blockBytes: number | undefined,
  h: ThreadedSha256,
): Promise<number> {
  checkRange(cart, barcode, p, blockBytes);
  let left = p.bytes;
  for (let id = p.fromBlock; left > 0;) {
    const k = cart.runIndexOf(id);
    const r = cart.run(k);
    const per = Math.max(1, Math.floor(READ_BYTES / r.blockLength));
    const count = Math.min(per, r.firstId + r.count - id, Math.ceil(left / r.blockLength));
    const want = Math.min(count * r.blockLength, left);
    const buf = await h.buffer(want);
    const got = await cart.readBlocks(k, id, count, buf, 0, want);
    h.update(buf, got);
    left -= got;
    id += count;
  }
  return p.bytes;
}
