import type { TextPdu } from '../iscsi/pdu/text.ts';
import { decodeKeyValues, encodeKeyValues, type KeyValues } from '../iscsi/text-keys.ts';

/** A target as SendTargets sees it. */
export interface ListedTarget {
  readonly name: string;
  allows(initiatorName: string): boolean;
}

/** Who asks, and where they reached us. */
export interface TextSession {
  readonly initiatorName: string;
  readonly sessionType: 'Normal' | 'Discovery';
  /** The target of a Normal session. */
  readonly target?: ListedTarget;
  /** This portal as TargetAddress shows it: `host:port,tpgt`. */
  readonly portal: string;
  targets(): Iterable<ListedTarget>;
}

/** One Text Response's fields: its data, and whether more follows under `ttt`. */
export interface TextAnswer {
  readonly data: Uint8Array;
  readonly more: boolean;
  readonly ttt: number;
}

/**
 * Text requests of a session (RFC 7143 11.10, 11.11): SendTargets (12.3, Appendix C), any other
 * key NotUnderstood, and answers longer than the initiator's MaxRecvDataSegmentLength continued
 * over several responses under one Target Transfer Tag. `decodeKeyValues` throws TextKeyError on
 * malformed text.
 */
export class TextExchange {
  private continuation?: { ttt: number; rest: Uint8Array };

  answer(req: TextPdu, session: TextSession, maxSegment: number, newTtt: () => number): TextAnswer {
    let payload: Uint8Array;
    if (req.ttt !== 0xffffffff && this.continuation?.ttt === req.ttt) {
      payload = this.continuation.rest;
      this.continuation = undefined;
    } else {
      const answers: KeyValues = [];
      for (const [k, v] of decodeKeyValues(req.data)) {
        if (k === 'SendTargets') answers.push(...sendTargets(v, session));
        else answers.push([k, 'NotUnderstood']);
      }
      payload = encodeKeyValues(answers);
    }
    if (payload.length <= maxSegment) return { data: payload, more: false, ttt: 0xffffffff };
    const ttt = newTtt();
    this.continuation = { ttt, rest: payload.subarray(maxSegment) };
    return { data: payload.subarray(0, maxSegment), more: true, ttt };
  }
}

/**
 * SendTargets (RFC 7143 12.3): `All` lists every target this initiator may see (Discovery
 * sessions only), empty the session's own target, or a name that target.
 */
export function sendTargets(value: string, s: TextSession): KeyValues {
  const out: KeyValues = [];
  for (const t of s.targets()) {
    if (!t.allows(s.initiatorName)) continue;
    const wanted = value === 'All' ? s.sessionType === 'Discovery' : value === '' ? t === s.target : value === t.name;
    if (wanted) out.push(['TargetName', t.name], ['TargetAddress', s.portal]);
  }
  return out;
}
