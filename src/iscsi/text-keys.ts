import { FerryError } from '../util/errors.ts';

// RFC 7143 6.1: text is key=value pairs, each terminated by NUL. Order matters and
// keys like TargetAddress repeat, so parse into an ordered list, never a Map.

export type KeyValues = Array<[string, string]>;

export class TextKeyError extends FerryError {
  constructor(message: string) {
    super('ERR_ISCSI_TEXT', message);
  }
}

const KEY_RE = /^[A-Za-z0-9.\-+@_]{1,63}$/;

export function decodeKeyValues(data: Uint8Array): KeyValues {
  const out: KeyValues = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0) continue;
    if (i > start) out.push(splitPair(Buffer.from(data.buffer, data.byteOffset + start, i - start).toString('utf8')));
    start = i + 1;
  }
  if (start < data.length) {
    // RFC 7143 6.1: a pair split across PDUs ends without NUL only when C=1; callers join first.
    out.push(splitPair(Buffer.from(data.buffer, data.byteOffset + start, data.length - start).toString('utf8')));
  }
  return out;
}

function splitPair(s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new TextKeyError(`text "${s.slice(0, 64)}" is not key=value`);
  const key = s.slice(0, eq);
  if (!KEY_RE.test(key)) throw new TextKeyError(`bad text key "${key.slice(0, 64)}"`);
  if (s.length - eq - 1 > 8192) throw new TextKeyError(`value of ${key} is longer than 8192 bytes`);
  return [key, s.slice(eq + 1)];
}

export function encodeKeyValues(pairs: KeyValues): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** First value of a key, or undefined. */
export function getKey(pairs: KeyValues, key: string): string | undefined {
  for (const [k, v] of pairs) if (k === key) return v;
  return undefined;
}

/** Reject keys declared twice in one negotiation (RFC 7143 6.2: a protocol error). */
export function assertNoDuplicates(pairs: KeyValues, allowRepeat: ReadonlySet<string> = new Set()): void {
  const seen = new Set<string>();
  for (const [k] of pairs) {
    if (allowRepeat.has(k)) continue;
    if (seen.has(k)) throw new TextKeyError(`key ${k} declared twice`);
    seen.add(k);
  }
}
