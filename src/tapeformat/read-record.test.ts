import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TapeDevice, TapePosition, TapeReadResult } from '../tape/tape-device.ts';
import { Cartridge } from '../tape/cartridge.ts';
import { CartridgeTapeDevice } from '../tape/cartridge-tape-device.ts';
import { encodeHeaderAt, encodeRecord } from './codec.ts';
import { checkPiece, dataBlocksFor, extentPositions, streamBytesOf } from './geometry.ts';
import { readRecord } from './read-record.ts';
import { TapeFormatError } from './errors.ts';
import type { SetHeader } from './records.ts';
import { packExtents, sampleHeader, sampleLabel, sampleTrailer } from './testing.ts';

/** A fixed-block tape in memory: objects are blocks or filemarks; reads stop before a filemark. */
class MemoryTape implements TapeDevice {
  readonly blockLength: number;
  readonly objects: Array<Uint8Array | 'filemark'> = [];
  pos = 0;
  constructor(blockLength: number) {
    this.blockLength = blockLength;
  }
  async read(target: Uint8Array): Promise<TapeReadResult> {
    if (this.pos >= this.objects.length) return { kind: 'eod' };
    if (this.objects[this.pos] === 'filemark') {
      this.pos++;
      return { kind: 'filemark' };
    }
    let n = 0;
    for (; n < target.length / this.blockLength; n++) {
      const o = this.objects[this.pos];
      if (o === undefined || o === 'filemark') break;
      target.set(o, n * this.blockLength);
      this.pos++;
    }
    return { kind: 'data', bytes: n * this.blockLength, recordLength: this.blockLength };
  }
  async write(record: Uint8Array): Promise<{ earlyWarning: boolean }> {
    assert.equal(record.length % this.blockLength, 0, 'whole blocks only');
    this.objects.length = this.pos;
    for (let i = 0; i < record.length; i += this.blockLength) {
      this.objects.push(record.slice(i, i + this.blockLength));
    }
    this.pos = this.objects.length;
    return { earlyWarning: false };
  }
  async writeFilemarks(count: number): Promise<void> {
    this.objects.length = this.pos;
    for (let i = 0; i < count; i++) this.objects.push('filemark');
    this.pos = this.objects.length;
  }
  async space(): Promise<void> {
    throw new Error('not needed here');
  }
  async locate(blockId: number): Promise<void> {
    this.pos = blockId;
  }
  async rewind(): Promise<void> {
    this.pos = 0;
  }
  async position(): Promise<TapePosition> {
    const fileNumber = this.objects.slice(0, this.pos).filter((o) => o === 'filemark').length;
    return { blockId: this.pos, fileNumber, bop: this.pos === 0, eow: false };
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

const B = 512;
/** Disk block `lba` of the test volume: every byte says which block it is. */
const diskBlock = (lba: number) => new Uint8Array(512).fill(lba & 0xff).fill(lba >> 8, 0, 2);

/** Write one cartridge the way a backup does (docs "Cartridge layout") and return the header as written. */
async function writeCartridge(dev: TapeDevice): Promise<SetHeader> {
  await dev.write(encodeRecord(sampleLabel(B), B));
  await dev.writeFilemarks(1);
  const runs = Array.from({ length: 30 }, (_, i): [number, number] => [1000 - i * 7, 1 + (i % 3)]);
  const draft = sampleHeader({ tapeBlockBytes: B, extents: packExtents(runs, 512), volumeBlocks: 2000 });
  const { header, bytes } = encodeHeaderAt(draft, (await dev.position()).blockId, B);
  assert.ok(bytes.length > B, 'the header spans blocks');
  await dev.write(bytes);
  // The data mover's part: extents packed, zero-padded to a block.
  const streamBytes = runs.reduce((n, [, b]) => n + b * 512, 0);
  const stream = new Uint8Array(dataBlocksFor(streamBytes, B) * B);
  let at = 0;
  for (const [lba, blocks] of runs) for (let i = 0; i < blocks; i++, at += 512) stream.set(diskBlock(lba + i), at);
  await dev.write(stream);
  const dataBlocks = stream.length / B;
  const trailer = sampleTrailer({ piece: { streamStart: 0, streamEnd: streamBytes, dataBlocks }, streamBytes });
  await dev.write(encodeRecord(trailer, B));
  await dev.writeFilemarks(1);
  return header;
}

async function scanAndRestore(dev: TapeDevice, written: SetHeader): Promise<void> {
  await dev.rewind();
  assert.deepEqual(await readRecord(dev, B), sampleLabel(B));
  assert.deepEqual(await readRecord(dev, B), { kind: 'filemark' });
  const h = await readRecord(dev, B);
  assert.deepEqual(h, written);
  assert.ok(h.kind === 'header');
  assert.equal((await dev.position()).blockId, h.piece.dataBlockId, 'data follows the header');
  // Catalog rebuild: LOCATE past the data to the trailer.
  const streamBytes = streamBytesOf(h);
  await dev.locate(h.piece.dataBlockId + dataBlocksFor(streamBytes, B));
  const t = await readRecord(dev, B);
  assert.ok(t.kind === 'trailer' && t.complete && t.piece.streamEnd === streamBytes);
  checkPiece(h, t);
  assert.deepEqual(await readRecord(dev, B), { kind: 'filemark' });
  assert.deepEqual(await readRecord(dev, B), { kind: 'eod' });
  // Restore: each extent from its position.
  for (const p of extentPositions(h)) {
    await dev.locate(p.blockId);
    const buf = new Uint8Array(dataBlocksFor(p.offset + p.blocks * 512, B) * B);
    await dev.read(buf);
    for (let i = 0; i < p.blocks; i++) {
      const got = buf.subarray(p.offset + i * 512, p.offset + (i + 1) * 512);
      assert.deepEqual(got, diskBlock(p.lba + i), `lba ${p.lba + i}`);
    }
  }
}

test('readRecord over a MemoryTape: label, filemark, header, trailer after LOCATE, EOD; extents found', async () => {
  const dev = new MemoryTape(B);
  const header = await writeCartridge(dev);
  await scanAndRestore(dev, header);
});

test('readRecord over a CartridgeTapeDevice (a temp cartridge file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tapeformat-'));
  try {
    const path = join(dir, 'a.cart');
    await (await Cartridge.create(path, { barcode: 'FER001L9', capacityBytes: 1 << 20 })).close();
    const dev = await CartridgeTapeDevice.open(path, { blockLength: B });
    try {
      const header = await writeCartridge(dev);
      await scanAndRestore(dev, header);
    } finally {
      await dev.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readRecord: a record cut short by a filemark, data that is no record, a block size mismatch', async () => {
  const dev = new MemoryTape(B);
  const runs = Array.from({ length: 30 }, (_, i): [number, number] => [i * 10, 2]);
  const bytes = encodeRecord(sampleHeader({ extents: packExtents(runs, 512), volumeBlocks: 400 }), B);
  await dev.write(bytes.subarray(0, 2 * B));
  await dev.writeFilemarks(1);
  await dev.write(new Uint8Array(B).fill(7));
  await dev.rewind();
  await assert.rejects(readRecord(dev, B), (e) => e instanceof TapeFormatError && e.problem === 'truncated');
  assert.deepEqual(await readRecord(dev, B), { kind: 'filemark' });
  await assert.rejects(readRecord(dev, B), (e) => e instanceof TapeFormatError && e.problem === 'bad-magic');
  await assert.rejects(readRecord(dev, 1024), (e) => e instanceof TapeFormatError && e.problem === 'bad-block-size');
});
