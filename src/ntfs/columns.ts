/**
 * A growable table of numbers, `width` columns per row, in one Float64Array: the plan keeps
 * ~100,000 attributes and runs, and one object per row kept the garbage collector busy.
 */
export class NumberTable {
  readonly width: number;
  data: Float64Array;
  rows = 0;

  constructor(width: number, initialRows = 256) {
    this.width = width;
    this.data = new Float64Array(width * initialRows);
  }

  /** Append a row (zeros: rows past `rows` are kept zero) and return its index. */
  add(): number {
    if ((this.rows + 1) * this.width > this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    return this.rows++;
  }

  get(row: number, col: number): number {
    return this.data[row * this.width + col];
  }

  set(row: number, col: number, v: number): void {
    this.data[row * this.width + col] = v;
  }

  /** Drop rows from `rows` on (undo a half-decoded record). */
  truncate(rows: number): void {
    if (rows < this.rows) this.data.fill(0, rows * this.width, this.rows * this.width);
    this.rows = rows;
  }
}
