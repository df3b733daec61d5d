/**
 * A zeroed CDB of `length` bytes with its OPERATION CODE in byte 0 (SPC-4 4.2.5.1). Builders
 * set fields with Buffer's big-endian writers, which throw RangeError on a value that does not
 * fit its field rather than sending a truncated one.
 */
export function newCdb(length: 6 | 10 | 12 | 16, opcode: number): Buffer {
  const c = Buffer.alloc(length);
  c[0] = opcode;
  return c;
}
