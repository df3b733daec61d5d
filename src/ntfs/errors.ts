import { FerryError } from '../util/errors.ts';

/** Stable codes of NtfsFormatError. */
export const NtfsErrorCode = {
  BOOT: 'ERR_NTFS_BOOT',
  FIXUP: 'ERR_NTFS_FIXUP',
  RECORD: 'ERR_NTFS_RECORD',
  ATTRIBUTE: 'ERR_NTFS_ATTRIBUTE',
  RUNLIST: 'ERR_NTFS_RUNLIST',
  ATTRIBUTE_LIST: 'ERR_NTFS_ATTRIBUTE_LIST',
  INDEX: 'ERR_NTFS_INDEX',
  LZNT1: 'ERR_NTFS_LZNT1',
  TRUNCATED: 'ERR_NTFS_TRUNCATED',
  NOT_FOUND: 'ERR_NTFS_NOT_FOUND',
  LIMIT: 'ERR_NTFS_LIMIT',
  SECURITY: 'ERR_NTFS_SECURITY',
} as const;
export type NtfsErrorCode = (typeof NtfsErrorCode)[keyof typeof NtfsErrorCode];

export interface NtfsErrorDetail {
  /** MFT record number the structure belongs to, when there is one. */
  record?: number;
  /**
   * Absolute byte offset on the volume (or inside the named structure when `record` is set and the volume offset is
   * unknown).
   */
  byteOffset?: number;
  expected?: string | number;
  actual?: string | number;
}

/** A structure on the volume is malformed. Names the record, the byte offset, and what was expected. */
export class NtfsFormatError extends FerryError {
  readonly record: number | undefined;
  readonly byteOffset: number | undefined;
  readonly expected: string | number | undefined;
  readonly actual: string | number | undefined;
  constructor(code: NtfsErrorCode, message: string, detail: NtfsErrorDetail = {}) {
    const where = [
      detail.record !== undefined ? `record ${detail.record}` : '',
      detail.byteOffset !== undefined ? `byte offset ${detail.byteOffset}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const what =
      detail.expected !== undefined || detail.actual !== undefined
        ? ` (expected ${String(detail.expected)}, got ${String(detail.actual)})`
        : '';
    super(code, `${where ? `${where}: ` : ''}${message}${what}`);
    this.record = detail.record;
    this.byteOffset = detail.byteOffset;
    this.expected = detail.expected;
    this.actual = detail.actual;
  }
}
