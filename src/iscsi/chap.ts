import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// RFC 7143 12.1.3 / RFC 1994: CHAP with MD5 (CHAP_A=5). Response = MD5(id || secret || challenge).

export const CHAP_MD5 = '5';

export interface ChapSecret {
  user: string;
  secret: string;
}

export function chapResponse(id: number, secret: string, challenge: Uint8Array): Buffer {
  return createHash('md5')
    .update(Buffer.of(id & 0xff))
    .update(Buffer.from(secret, 'utf8'))
    .update(challenge)
    .digest();
}

/** RFC 7143 6.1 binary values: 0x… hex or 0b… base64. */
export function decodeBinary(value: string): Buffer | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) return Buffer.from(value.slice(2), 'hex');
  if (/^0[xX][0-9a-fA-F]+$/.test(value)) return Buffer.from('0' + value.slice(2), 'hex');
  if (/^0[bB][A-Za-z0-9+/=]+$/.test(value)) return Buffer.from(value.slice(2), 'base64');
  return undefined;
}

export function encodeBinary(bytes: Uint8Array): string {
  return '0x' + Buffer.from(bytes).toString('hex');
}

export function newChallenge(): { id: number; challenge: Buffer } {
  return { id: randomBytes(1)[0], challenge: randomBytes(16) };
}

export function verifyChapResponse(id: number, secret: string, challenge: Uint8Array, response: Uint8Array): boolean {
  const want = chapResponse(id, secret, challenge);
  return response.length === want.length && timingSafeEqual(want, response);
}
