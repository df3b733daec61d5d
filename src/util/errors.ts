/** Base of every Ferry error: a stable, machine-readable `code` plus a human message. */
export class FerryError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A structure was shorter than its layout needs, or a field is out of range. */
export class DecodeError extends FerryError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super('ERR_DECODE', message);
    this.offset = offset;
  }
}

/** Bad user input: a CLI argument or a config field. The message says what to fix. */
export class UsageError extends FerryError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}
