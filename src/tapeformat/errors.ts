import { FerryError } from '../util/errors.ts';

/** What is wrong with a record (docs/on-tape-format.md "Errors"). */
export type TapeFormatProblem =
  | 'truncated'
  | 'bad-magic'
  | 'bad-prefix-crc'
  | 'unknown-version'
  | 'bad-prefix'
  | 'bad-crc'
  | 'bad-json'
  | 'bad-field'
  | 'kind-mismatch'
  | 'piece-mismatch'
  | 'bad-block-size';

/** A tape record that cannot be decoded or encoded. `code` is always ERR_TAPE_FORMAT. */
export class TapeFormatError extends FerryError {
  readonly problem: TapeFormatProblem;
  /** Byte offset in the record where the problem lies, when it is a byte. */
  readonly offset: number | undefined;
  /** Dotted path of the bad JSON field (`extents.3.lba`), for 'bad-field'. */
  readonly field: string | undefined;
  constructor(problem: TapeFormatProblem, message: string, details: { offset?: number; field?: string } = {}) {
    super('ERR_TAPE_FORMAT', message);
    this.problem = problem;
    this.offset = details.offset;
    this.field = details.field;
  }
}
