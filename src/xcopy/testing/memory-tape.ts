import type { TapeDevice, TapePosition, TapeReadResult } from '../../tape/tape-device.ts';

/** An in-memory TapeDevice for copy-manager tests: records and filemarks in a list. */
export class MemoryTape implements TapeDevice {
  readonly blockLength: number;
  /** Logical objects: a Uint8Array record, or 'FM'. */
  readonly objects: Array<Uint8Array | 'FM'> = [];
  pos = 0;
  /** Count of write() calls (records or fixed-block transfers). */
  writes = 0;

  constructor(blockLength = 0) {
    this.blockLength = blockLength;
  }

  async read(target: Uint8Array): Promise<TapeReadResult> {
    if (this.blockLength === 0) {
      const o = this.objects[this.pos];
      if (o === undefined) return { kind: 'eod' };
      this.pos++;
      if (o === 'FM') return { kind: 'filemark' };
      const n = Math.min(o.length, target.length);
      target.set(o.subarray(0, n));
      return { kind: 'data', bytes: n, recordLength: o.length };
    }
    const want = target.length / this.blockLength;
    let got = 0;
    while (got < want) {
      const o = this.objects[this.pos];
      if (o === undefined || o === 'FM') {
        if (got === 0) {
          if (o === 'FM') this.pos++;
          return o === 'FM' ? { kind: 'filemark' } : { kind: 'eod' };
        }
        break;
      }
      target.set(o, got * this.blockLength);
      this.pos++;
      got++;
    }
    return { kind: 'data', bytes: got * this.blockLength, recordLength: this.blockLength };
  }

  async write(record: Uint8Array): Promise<{ earlyWarning: boolean }> {
    this.objects.length = this.pos; // a write ends the data
    this.writes++;
    if (this.blockLength === 0) {
      this.objects.push(new Uint8Array(record));
      this.pos++;
    } else {
      if (record.length % this.blockLength) throw new Error('fixed-mode write of a partial block');
      for (let o = 0; o < record.length; o += this.blockLength) {
        this.objects.push(new Uint8Array(record.subarray(o, o + this.blockLength)));
        this.pos++;
      }
    }
    return { earlyWarning: false };
  }

  async writeFilemarks(count: number): Promise<void> {
    this.objects.length = this.pos;
    for (let i = 0; i < count; i++) this.objects.push('FM');
    this.pos += count;
  }

  async space(unit: 'blocks' | 'filemarks' | 'eod', count: number): Promise<void> {
    if (unit === 'eod') {
      this.pos = this.objects.length;
      return;
    }
    const step = count < 0 ? -1 : 1;
    for (let left = Math.abs(count); left > 0;) {
      const at = step > 0 ? this.pos : this.pos - 1;
      const o = this.objects[at];
      if (o === undefined) throw new Error('space past the data');
      this.pos += step;
      if (unit === 'blocks' ? o !== 'FM' : o === 'FM') left--;
    }
  }

  async locate(blockId: number): Promise<void> {
    if (blockId > this.objects.length) throw new Error('locate past end of data');
    this.pos = blockId;
  }
  async rewind(): Promise<void> {
    this.pos = 0;
  }
  async position(): Promise<TapePosition> {
    return {
      blockId: this.pos,
      fileNumber: this.objects.slice(0, this.pos).filter((o) => o === 'FM').length,
      bop: this.pos === 0,
      eow: false,
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  /** All data records concatenated (filemarks skipped). */
  data(): Uint8Array {
    const recs = this.objects.filter((o): o is Uint8Array => o !== 'FM');
    const out = new Uint8Array(recs.reduce((n, r) => n + r.length, 0));
    let off = 0;
    for (const r of recs) {
      out.set(r, off);
      off += r.length;
    }
    return out;
  }
}
