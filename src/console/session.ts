import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The console's sign-in, kept stateless: the session cookie is `<expiry ms>.<nonce>.<mac>`, where
 * the MAC is an HMAC-SHA256 under a key derived from the server token. Nothing is stored, a
 * restart keeps operators signed in, and a new server token signs everyone out. The anti-CSRF
 * token is a second MAC over the cookie, so it changes with every sign-in and is useless without
 * the cookie (OWASP's "signed double-submit cookie").
 */

export const SESSION_COOKIE = 'ferry_console';
/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 3600 * 1000;
/** The header htmx sends on every console request (hx-headers on <body>); forms carry `_csrf`. */
export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';

export class ConsoleSessions {
  private readonly key: Buffer;

  constructor(token: string) {
    this.key = createHmac('sha256', 'ferry console session key').update(token).digest();
  }

  private mac(purpose: string, text: string): string {
    return createHmac('sha256', this.key).update(`${purpose}\n${text}`).digest('base64url');
  }

  /** A new session cookie value, valid for ttlMs from now. */
  issue(nowMs = Date.now(), ttlMs = SESSION_TTL_MS, nonce = randomNonce()): string {
    const body = `${nowMs + ttlMs}.${nonce}`;
    return `${body}.${this.mac('session', body)}`;
  }

  /** Is this cookie value one we issued, and not expired? */
  valid(cookie: string | undefined, nowMs = Date.now()): boolean {
    if (!cookie) return false;
    const m = /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(cookie);
    if (!m) return false;
    if (!sameText(m[3], this.mac('session', `${m[1]}.${m[2]}`))) return false;
    return Number(m[1]) > nowMs;
  }

  /** The anti-CSRF token that goes with a session cookie. */
  csrfFor(cookie: string): string {
    return this.mac('csrf', cookie);
  }

  csrfMatches(cookie: string, presented: string | undefined): boolean {
    return presented !== undefined && sameText(presented, this.csrfFor(cookie));
  }
}

function randomNonce(): string {
  return randomBytes(16).toString('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
