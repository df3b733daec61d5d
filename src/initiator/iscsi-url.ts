import { UsageError } from '../util/errors.ts';

/** iscsi://[user[%secret]@]host[:port]/target-iqn/lun — libiscsi's URL form. */
export interface IscsiUrl {
  host: string;
  port: number;
  targetName: string;
  lun: number;
  chap?: { user: string; secret: string };
}

export function isIscsiUrl(s: string): boolean {
  return s.startsWith('iscsi://');
}

export function parseIscsiUrl(s: string): IscsiUrl {
  const m = /^iscsi:\/\/(?:([^%@]+)(?:%([^@]+))?@)?(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/([^/]+)\/(\d+)$/.exec(s);
  if (!m) throw new UsageError(`"${s}" is not an iSCSI URL: use iscsi://host[:port]/iqn.target.name/LUN`);
  const port = m[4] ? Number(m[4]) : 3260;
  if (port > 65535) throw new UsageError(`port in "${s}" is out of range`);
  const host = m[3].replace(/^\[|\]$/g, '');
  return {
    host,
    port,
    targetName: decodeURIComponent(m[5]),
    lun: Number(m[6]),
    chap: m[1] ? { user: decodeURIComponent(m[1]), secret: decodeURIComponent(m[2] ?? '') } : undefined,
  };
}
