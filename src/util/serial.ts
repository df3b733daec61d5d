// 32-bit serial number arithmetic, RFC 1982 (used for CmdSN/StatSN/DataSN, RFC 7143 4.2.2.1).

/** a < b in serial arithmetic. */
export function serialLt(a: number, b: number): boolean {
  const d = (b - a) >>> 0;
  return d !== 0 && d < 0x80000000;
}
export function serialLe(a: number, b: number): boolean {
  return a === b || serialLt(a, b);
}
export function serialGt(a: number, b: number): boolean {
  return serialLt(b, a);
}
export function serialAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
