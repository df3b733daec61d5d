/**
 * The stream seam (DESIGN.md "Key seams"): a tape drive with a loaded cartridge, local
 * (a cartridge file) or remote (an SSC LU reached through the initiator). The copy manager
 * and the backup runner use only this.
 */
export interface TapePosition {
  /** Logical object (block) id of the next block, SSC-3 READ POSITION. Filemarks count as objects. */
  blockId: number;
  /** Filemarks before the position. */
  fileNumber: number;
  bop: boolean;
  /** Between early warning and end of partition. */
  eow: boolean;
}

/** What a read met: data, a filemark, or end of data. */
export type TapeReadResult =
  | { kind: 'data'; bytes: number; /** record length on tape when it differs from what fitted */ recordLength: number }
  | { kind: 'filemark' }
  | { kind: 'eod' };

export interface TapeDevice {
  /** Fixed block length in bytes, or 0 for variable-length records. */
  readonly blockLength: number;
  /** Read one record into `target` (variable mode) or `target.length / blockLength` blocks (fixed). */
  read(target: Uint8Array): Promise<TapeReadResult>;
  /** Write one record (variable) or whole blocks (fixed). Resolves when acknowledged. */
  write(record: Uint8Array): Promise<{ earlyWarning: boolean }>;
  /**
   * Optional, variable mode: write `data.length / recordLength` records of `recordLength`
   * bytes in one step, exactly as that many write() calls would. On failure the error's
   * `bytesWritten` says how much went to tape before it.
   */
  writeRecords?(data: Uint8Array, recordLength: number): Promise<{ earlyWarning: boolean }>;
  writeFilemarks(count: number): Promise<void>;
  /** SSC-3 SPACE: count may be negative. */
  space(unit: 'blocks' | 'filemarks' | 'eod', count: number): Promise<void>;
  locate(blockId: number): Promise<void>;
  rewind(): Promise<void>;
  position(): Promise<TapePosition>;
  /** Make acknowledged records durable (WRITE FILEMARKS 0). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
