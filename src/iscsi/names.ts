// RFC 7143 4.2.7.1-4.2.7.5: iSCSI names are iqn., eui. or naa. formats.
const ISCSI_NAME_RE = /^(iqn\.\d{4}-\d{2}\.[^\s,]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

export const ISCSI_NAME_HINT = 'iqn.YYYY-MM.reverse.domain:name, eui.<16 hex> or naa.<16-32 hex>';

export function isIscsiName(name: string): boolean {
  return ISCSI_NAME_RE.test(name);
}
