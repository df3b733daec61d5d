// Record magics (docs/on-tape-format.md "Magics"): sha256(text)[0..8], as PBS does.
// A new format version gets new texts, hence new magics; old entries stay readable names.

export const FORMAT_VERSION = 1;

export type RecordKind = 'label' | 'header' | 'trailer';

export interface MagicInfo {
  readonly name: string;
  readonly kind: RecordKind;
  readonly version: number;
}

/** Every magic Ferry has defined, by lower-case hex, with the text it was hashed from. */
export const MAGICS: Readonly<Record<string, MagicInfo>> = Object.freeze({
  aec4e0c8e677fdd5: { name: 'Ferry volume label v1', kind: 'label', version: 1 },
  f88800aa80b7df83: { name: 'Ferry set header v1', kind: 'header', version: 1 },
  '6d3f1b0df877169a': { name: 'Ferry set trailer v1', kind: 'trailer', version: 1 },
});

/** The magics this version writes. */
export const MAGIC: Readonly<Record<RecordKind, Uint8Array>> = Object.freeze({
  label: hexBytes('aec4e0c8e677fdd5'),
  header: hexBytes('f88800aa80b7df83'),
  trailer: hexBytes('6d3f1b0df877169a'),
});

export function magicHex(magic: Uint8Array): string {
  return Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The table entry for an 8-byte magic, or undefined. */
export function lookupMagic(magic: Uint8Array): MagicInfo | undefined {
  const hex = magicHex(magic);
  return Object.hasOwn(MAGICS, hex) ? MAGICS[hex] : undefined;
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}
