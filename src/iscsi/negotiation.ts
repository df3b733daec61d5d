import type { KeyValues } from './text-keys.ts';

// RFC 7143 13: operational text keys, as a table. Each entry says how the two offers
// combine (6.2.2 result functions) and the legal range (13.x).

/** The negotiated parameters of a session and its connection (RFC 7143 13). */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  maxConnections: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxBurstLength: number;
  firstBurstLength: number;
  /** The peer's MaxRecvDataSegmentLength: the largest data segment we may send (13.12). */
  peerMaxRecvDataSegmentLength: number;
  /** Our MaxRecvDataSegmentLength: the largest we accept. */
  ownMaxRecvDataSegmentLength: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
}

/** RFC 7143 defaults: what holds when a key is not negotiated. */
export function defaultParams(): SessionParams {
  return {
    headerDigest: false,
    dataDigest: false,
    maxConnections: 1,
    initialR2T: true,
    immediateData: true,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    peerMaxRecvDataSegmentLength: 8192,
    ownMaxRecvDataSegmentLength: 8192,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    maxOutstandingR2T: 1,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
    errorRecoveryLevel: 0,
  };
}

type NumKey =
  | 'maxConnections'
  | 'maxBurstLength'
  | 'firstBurstLength'
  | 'defaultTime2Wait'
  | 'defaultTime2Retain'
  | 'maxOutstandingR2T'
  | 'errorRecoveryLevel';
type BoolKey = 'initialR2T' | 'immediateData' | 'dataPDUInOrder' | 'dataSequenceInOrder';

type KeyDef =
  | { kind: 'min' | 'max'; field: NumKey; lo: number; hi: number; leadingOnly: boolean }
  | { kind: 'and' | 'or'; field: BoolKey; leadingOnly: boolean }
  | { kind: 'digest'; field: 'headerDigest' | 'dataDigest' }
  | { kind: 'mrdsl' }
  | { kind: 'marker' }
  | { kind: 'ignore' };

/** RFC 7143 13.x, with the result function of each key. */
export const OPERATIONAL_KEYS: Readonly<Record<string, KeyDef>> = {
  HeaderDigest: { kind: 'digest', field: 'headerDigest' },
  DataDigest: { kind: 'digest', field: 'dataDigest' },
  MaxConnections: { kind: 'min', field: 'maxConnections', lo: 1, hi: 65535, leadingOnly: true },
  InitialR2T: { kind: 'or', field: 'initialR2T', leadingOnly: true },
  ImmediateData: { kind: 'and', field: 'immediateData', leadingOnly: true },
  MaxRecvDataSegmentLength: { kind: 'mrdsl' },
  MaxBurstLength: { kind: 'min', field: 'maxBurstLength', lo: 512, hi: 16777215, leadingOnly: true },
  FirstBurstLength: { kind: 'min', field: 'firstBurstLength', lo: 512, hi: 16777215, leadingOnly: true },
  DefaultTime2Wait: { kind: 'max', field: 'defaultTime2Wait', lo: 0, hi: 3600, leadingOnly: true },
  DefaultTime2Retain: { kind: 'min', field: 'defaultTime2Retain', lo: 0, hi: 3600, leadingOnly: true },
  MaxOutstandingR2T: { kind: 'min', field: 'maxOutstandingR2T', lo: 1, hi: 65535, leadingOnly: true },
  DataPDUInOrder: { kind: 'or', field: 'dataPDUInOrder', leadingOnly: true },
  DataSequenceInOrder: { kind: 'or', field: 'dataSequenceInOrder', leadingOnly: true },
  ErrorRecoveryLevel: { kind: 'min', field: 'errorRecoveryLevel', lo: 0, hi: 2, leadingOnly: true },
  IFMarker: { kind: 'marker' },
  OFMarker: { kind: 'marker' },
  IFMarkInt: { kind: 'ignore' },
  OFMarkInt: { kind: 'ignore' },
};

/** What the target wants, before it hears the initiator. */
export interface TargetLimits {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  initialR2T: boolean;
  immediateData: boolean;
  /** Digests the target accepts, in preference order. */
  digests: ReadonlyArray<'CRC32C' | 'None'>;
}

export const DEFAULT_TARGET_LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 16776192,
  firstBurstLength: 262144,
  maxOutstandingR2T: 1,
  initialR2T: false,
  immediateData: true,
  digests: ['None', 'CRC32C'],
};

function parseNum(v: string): number | undefined {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}
function parseBool(v: string): boolean | undefined {
  return v === 'Yes' ? true : v === 'No' ? false : undefined;
}
const yn = (b: boolean): string => (b ? 'Yes' : 'No');

/**
 * Target side of operational negotiation (RFC 7143 6.2): apply the initiator's offers to
 * `params` and return the answers. Unknown keys get NotUnderstood, bad values Reject.
 */
export function answerOffers(offers: KeyValues, params: SessionParams, limits: TargetLimits): KeyValues {
  const out: KeyValues = [];
  for (const [key, value] of offers) {
    const def = OPERATIONAL_KEYS[key];
    if (!def) continue; // callers handle login/declarative keys; unknown ones become NotUnderstood there
    switch (def.kind) {
      case 'digest': {
        const offered = value.split(',');
        const pick = offered.find((d) => (limits.digests as readonly string[]).includes(d));
        if (!pick) {
          out.push([key, 'Reject']);
          break;
        }
        params[def.field] = pick === 'CRC32C';
        out.push([key, pick]);
        break;
      }
      case 'min':
      case 'max': {
        const n = parseNum(value);
        if (n === undefined || n < def.lo || n > def.hi) {
          out.push([key, 'Reject']);
          break;
        }
        const ours =
          def.field === 'maxBurstLength'
            ? limits.maxBurstLength
            : def.field === 'firstBurstLength'
              ? limits.firstBurstLength
              : def.field === 'maxOutstandingR2T'
                ? limits.maxOutstandingR2T
                : def.field === 'maxConnections'
                  ? 1
                  : def.field === 'errorRecoveryLevel'
                    ? 0
                    : def.field === 'defaultTime2Retain'
                      ? 0
                      : n;
        const r = def.kind === 'min' ? Math.min(n, ours) : Math.max(n, ours);
        params[def.field] = r;
        out.push([key, String(r)]);
        break;
      }
      case 'and':
      case 'or': {
        const b = parseBool(value);
        if (b === undefined) {
          out.push([key, 'Reject']);
          break;
        }
        const ours =
          def.field === 'initialR2T' ? limits.initialR2T : def.field === 'immediateData' ? limits.immediateData : true;
        const r = def.kind === 'and' ? b && ours : b || ours;
        params[def.field] = r;
        out.push([key, yn(r)]);
        break;
      }
      case 'mrdsl': {
        const n = parseNum(value);
        if (n === undefined || n < 512 || n > 16777215) {
          out.push([key, 'Reject']);
          break;
        }
        params.peerMaxRecvDataSegmentLength = n; // declarative: no answer needed
        break;
      }
      case 'marker':
        out.push([key, 'No']);
        break;
      case 'ignore':
        out.push([key, 'Irrelevant']);
        break;
    }
  }
  if (params.firstBurstLength > params.maxBurstLength) params.firstBurstLength = params.maxBurstLength;
  return out;
}

/** Initiator side: what we offer. */
export interface InitiatorOffer {
  headerDigest: boolean;
  dataDigest: boolean;
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
}

export const DEFAULT_INITIATOR_OFFER: InitiatorOffer = {
  headerDigest: false,
  dataDigest: false,
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 16776192,
  firstBurstLength: 262144,
  initialR2T: false,
  immediateData: true,
};

export function initiatorOffers(o: InitiatorOffer): KeyValues {
  return [
    ['HeaderDigest', o.headerDigest ? 'CRC32C,None' : 'None'],
    ['DataDigest', o.dataDigest ? 'CRC32C,None' : 'None'],
    ['MaxConnections', '1'],
    ['InitialR2T', yn(o.initialR2T)],
    ['ImmediateData', yn(o.immediateData)],
    ['MaxRecvDataSegmentLength', String(o.maxRecvDataSegmentLength)],
    ['MaxBurstLength', String(o.maxBurstLength)],
    ['FirstBurstLength', String(o.firstBurstLength)],
    ['DefaultTime2Wait', '2'],
    ['DefaultTime2Retain', '0'],
    ['MaxOutstandingR2T', '1'],
    ['DataPDUInOrder', 'Yes'],
    ['DataSequenceInOrder', 'Yes'],
    ['ErrorRecoveryLevel', '0'],
    ['IFMarker', 'No'],
    ['OFMarker', 'No'],
  ];
}

/** Initiator side: apply the target's answers (and declarations) to `params`. */
export function applyAnswers(answers: KeyValues, params: SessionParams): void {
  for (const [key, value] of answers) {
    const def = OPERATIONAL_KEYS[key];
    if (!def || value === 'NotUnderstood' || value === 'Irrelevant' || value === 'Reject') continue;
    switch (def.kind) {
      case 'digest':
        params[def.field] = value === 'CRC32C';
        break;
      case 'min':
      case 'max': {
        const n = parseNum(value);
        if (n !== undefined) params[def.field] = n;
        break;
      }
      case 'and':
      case 'or': {
        const b = parseBool(value);
        if (b !== undefined) params[def.field] = b;
        break;
      }
      case 'mrdsl': {
        const n = parseNum(value);
        if (n !== undefined) params.peerMaxRecvDataSegmentLength = n;
        break;
      }
      default:
        break;
    }
  }
  if (params.firstBurstLength > params.maxBurstLength) params.firstBurstLength = params.maxBurstLength;
}
