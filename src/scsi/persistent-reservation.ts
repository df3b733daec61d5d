import { SenseError, SenseKey, Asc } from './sense.ts';
import { ScsiStatus, type Nexus, type ScsiResult } from './task.ts';
import type { UnitAttentions } from './unit-attention.ts';
import { ByteReader } from '../util/byte-reader.ts';
import { ByteWriter } from '../util/byte-writer.ts';

/** SPC-4 6.16.3 Table 182: persistent reservation TYPE. */
export const PrType = {
  WRITE_EXCLUSIVE: 1,
  EXCLUSIVE_ACCESS: 3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 8,
} as const;

export const PrOutAction = {
  REGISTER: 0,
  RESERVE: 1,
  RELEASE: 2,
  CLEAR: 3,
  PREEMPT: 4,
  PREEMPT_AND_ABORT: 5,
  REGISTER_AND_IGNORE_EXISTING_KEY: 6,
  REGISTER_AND_MOVE: 7,
} as const;

export const PrInAction = { READ_KEYS: 0, READ_RESERVATION: 1, REPORT_CAPABILITIES: 2, READ_FULL_STATUS: 3 } as const;

const VALID_TYPES = new Set<number>(Object.values(PrType));
const isAllRegistrants = (t: number): boolean => t === 7 || t === 8;
const isRegistrantsType = (t: number): boolean => t >= 5;
const isExclusiveAccess = (t: number): boolean => t === 3 || t === 6 || t === 8;

interface Registration {
  key: bigint;
  nexusKey: string;
  transportId: Uint8Array;
}

/** PERSISTENT RESERVE OUT basic parameter list (24 bytes). SPC-4 6.16.3 */
export interface PrOutParams {
  key: bigint;
  serviceActionKey: bigint;
  specIPt: boolean;
  allTgPt: boolean;
  aptpl: boolean;
}

export function decodePrOutParams(data: Uint8Array): PrOutParams {
  const r = new ByteReader(data);
  const b20 = r.u8(20);
  return {
    key: r.u64big(0),
    serviceActionKey: r.u64big(8),
    specIPt: !!(b20 & 8),
    allTgPt: !!(b20 & 4),
    aptpl: !!(b20 & 1),
  };
}

/** REGISTER AND MOVE parameter list (SPC-4 6.16.4). */
export interface PrMoveParams {
  key: bigint;
  serviceActionKey: bigint;
  unreg: boolean;
  aptpl: boolean;
  relativeTargetPortId: number;
  transportId: Uint8Array;
}

export function decodePrMoveParams(data: Uint8Array): PrMoveParams {
  const r = new ByteReader(data);
  const b17 = r.u8(17);
  const tidLength = r.u32(20);
  return {
    key: r.u64big(0),
    serviceActionKey: r.u64big(8),
    unreg: !!(b17 & 2),
    aptpl: !!(b17 & 1),
    relativeTargetPortId: r.u16(18),
    transportId: r.bytes(tidLength, 24),
  };
}

/** The initiator port name in an iSCSI TransportID (SPC-4 7.6.4.6), format 00b or 01b. */
export function transportIdName(tid: Uint8Array): string | undefined {
  if (tid.length < 5 || (tid[0] & 0x0f) !== 0x05) return undefined;
  const len = Math.min(tid.length - 4, (tid[2] << 8) | tid[3]);
  const body = tid.subarray(4, 4 + len);
  const nul = body.indexOf(0);
  const s = new TextDecoder().decode(nul >= 0 ? body.subarray(0, nul) : body);
  // Format 00b names only the initiator; I_T nexus keys need the ISID (format 01b).
  return (tid[0] & 0xc0) === 0x40 && /,i,0x[0-9a-f]{12}$/i.test(s)
    ? s.replace(/0x([0-9a-f]{12})$/i, (_, h: string) => `0x${h.toLowerCase()}`)
    : undefined;
}

const conflict = (): ScsiResult => ({ status: ScsiStatus.RESERVATION_CONFLICT });

/**
 * Persistent reservation state of one LU (SPC-4 5.13), kept in memory: APTPL is refused,
 * so registrations do not survive a restart (REPORT CAPABILITIES says PTPL_C=0).
 */
export class PersistentReservations {
  generation = 0;
  private readonly regs = new Map<string, Registration>();
  /** Nexus key of the holder (non all-registrants types). */
  private holder: string | undefined;
  private type = 0;
  private readonly ua: UnitAttentions;

  constructor(ua: UnitAttentions) {
    this.ua = ua;
  }

  get hasRegistrations(): boolean {
    return this.regs.size > 0;
  }
  get reserved(): boolean {
    return this.type !== 0;
  }

  isHolder(nexusKey: string): boolean {
    if (!this.type) return false;
    if (isAllRegistrants(this.type)) return this.regs.has(nexusKey);
    return this.holder === nexusKey;
  }

  /** SPC-4 5.13.1 Table 64: does a command of this access kind from `nexusKey` conflict? */
  conflicts(nexusKey: string, access: 'read' | 'write'): boolean {
    if (!this.type || this.isHolder(nexusKey)) return false;
    if (access === 'read' && !isExclusiveAccess(this.type)) return false;
    return !(isRegistrantsType(this.type) && this.regs.has(nexusKey));
  }

  /** PERSISTENT RESERVE IN. SPC-4 6.15 */
  in(serviceAction: number, relativePortId: number): Uint8Array {
    switch (serviceAction) {
      case PrInAction.READ_KEYS: {
        const keys = [...this.regs.values()];
        const w = new ByteWriter(8 + 8 * keys.length).u32(this.generation).u32(8 * keys.length);
        for (const r of keys) w.u64(r.key);
        return w.buf;
      }
      case PrInAction.READ_RESERVATION: {
        if (!this.type) return new ByteWriter(8).u32(this.generation).u32(0).buf;
        const key = isAllRegistrants(this.type) ? 0n : (this.regs.get(this.holder ?? '')?.key ?? 0n);
        const w = new ByteWriter(24).u32(this.generation).u32(16).u64(key);
        w.setU8(21, this.type); // SCOPE 0h (LU) | TYPE
        return w.buf;
      }
      case PrInAction.REPORT_CAPABILITIES: {
        // SPC-4 6.15.4: LENGTH 8; CRH=1 (RESERVE(6) conflicts while registrations exist), ATP_C=1,
        // PTPL_C=0 (APTPL refused); TMV=1, ALLOW COMMANDS 000b; type mask: all six types.
        const w = new ByteWriter(8).u16(8);
        w.setU8(2, 0x10 | 0x04);
        w.setU8(3, 0x80);
        w.setU8(4, 0x80 | 0x40 | 0x20 | 0x08 | 0x02);
        w.setU8(5, 0x01);
        return w.buf;
      }
      case PrInAction.READ_FULL_STATUS: {
        const regs = [...this.regs.values()];
        const size = regs.reduce((n, r) => n + 24 + r.transportId.length, 0);
        const w = new ByteWriter(8 + size).u32(this.generation).u32(size);
        for (const r of regs) {
          const at = w.pos;
          w.u64(r.key);
          const holder = this.isHolder(r.nexusKey);
          w.setU8(at + 12, 0x02 | (holder ? 0x01 : 0)); // ALL_TG_PT=1 (one port), R_HOLDER
          if (holder) w.setU8(at + 13, this.type);
          w.setU16(at + 18, relativePortId);
          w.setU32(at + 20, r.transportId.length);
          w.pos = at + 24;
          w.bytes(r.transportId);
        }
        return w.buf;
      }
      default:
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, {
          fieldPointer: { cd: true, field: 1, bit: 4 },
        });
    }
  }

  /** PERSISTENT RESERVE OUT. SPC-4 6.16, 5.13.5–5.13.11 */
  out(nexus: Nexus, sa: number, scope: number, type: number, params: PrOutParams): ScsiResult | undefined {
    const me = this.regs.get(nexus.key);
    if (params.aptpl)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 20, bit: 0 },
      });
    if (params.specIPt)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 20, bit: 3 },
      });
    if (sa === PrOutAction.REGISTER || sa === PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY) {
      if (sa === PrOutAction.REGISTER && (me ? me.key !== params.key : params.key !== 0n)) return conflict();
      const newKey = params.serviceActionKey;
      if (!me) {
        if (newKey !== 0n)
          this.regs.set(nexus.key, { key: newKey, nexusKey: nexus.key, transportId: nexus.transportId });
      } else if (newKey === 0n) {
        this.unregister(nexus.key);
      } else {
        me.key = newKey;
      }
      this.generation = (this.generation + 1) >>> 0;
      return undefined;
    }
    if (!me || me.key !== params.key) return conflict();
    const needType =
      sa === PrOutAction.RESERVE ||
      sa === PrOutAction.RELEASE ||
      sa === PrOutAction.PREEMPT ||
      sa === PrOutAction.PREEMPT_AND_ABORT;
    // SCOPE must be LU_SCOPE and TYPE valid, except for a PREEMPT that only removes registrations
    // (no reservation, or not the holder's key), which ignores them (SPC-4 5.13.11.2.3).
    if (needType && (scope !== 0 || !VALID_TYPES.has(type))) {
      if (
        !(sa === PrOutAction.PREEMPT || sa === PrOutAction.PREEMPT_AND_ABORT) ||
        this.type ||
        params.serviceActionKey === 0n
      ) {
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, {
          fieldPointer: { cd: true, field: 2 },
        });
      }
    }
    switch (sa) {
      case PrOutAction.RESERVE:
        if (!this.type) {
          this.type = type;
          this.holder = nexus.key;
          return undefined;
        }
        return this.isHolder(nexus.key) && this.type === type ? undefined : conflict();
      case PrOutAction.RELEASE:
        if (!this.type || !this.isHolder(nexus.key)) return undefined;
        if (this.type !== type)
          throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
        this.release(nexus.key);
        return undefined;
      case PrOutAction.CLEAR:
        for (const k of this.regs.keys()) if (k !== nexus.key) this.ua.add(k, Asc.RESERVATIONS_PREEMPTED);
        this.regs.clear();
        this.type = 0;
        this.holder = undefined;
        this.generation = (this.generation + 1) >>> 0;
        return undefined;
      case PrOutAction.PREEMPT:
      case PrOutAction.PREEMPT_AND_ABORT:
        return this.preempt(nexus.key, type, params.serviceActionKey);
      default:
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, {
          fieldPointer: { cd: true, field: 1, bit: 4 },
        });
    }
  }

  /**
   * REGISTER AND MOVE (SPC-4 5.13.8): the holder hands its reservation to another I_T nexus,
   * named by TransportID on this target port, registering it with the service action key.
   */
  move(nexus: Nexus, p: PrMoveParams): ScsiResult | undefined {
    const me = this.regs.get(nexus.key);
    if (!me || me.key !== p.key) return conflict();
    if (p.aptpl)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 17, bit: 0 },
      });
    if (!this.type || isAllRegistrants(this.type) || this.holder !== nexus.key) return conflict();
    if (p.serviceActionKey === 0n)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 8 },
      });
    const name = transportIdName(p.transportId);
    if (!name)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 24 },
      });
    const destKey = `${name},${nexus.targetName},t,${nexus.tpgt}`;
    if (destKey === nexus.key)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
        fieldPointer: { cd: false, field: 24 },
      });
    const dest = this.regs.get(destKey);
    if (dest) dest.key = p.serviceActionKey;
    else this.regs.set(destKey, { key: p.serviceActionKey, nexusKey: destKey, transportId: p.transportId.slice() });
    this.holder = destKey;
    if (p.unreg) this.regs.delete(nexus.key);
    this.generation = (this.generation + 1) >>> 0;
    return undefined;
  }

  /** SPC-4 5.13.11.2 */
  private preempt(me: string, type: number, saKey: bigint): ScsiResult | undefined {
    const victims = (pred: (r: Registration) => boolean): string[] =>
      [...this.regs.values()].filter(pred).map((r) => r.nexusKey);
    if (
      !this.type ||
      (isAllRegistrants(this.type) && saKey !== 0n) ||
      (!isAllRegistrants(this.type) && this.regs.get(this.holder ?? '')?.key !== saKey)
    ) {
      // No reservation to take over: only remove registrations.
      if (saKey === 0n)
        throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST, {
          fieldPointer: { cd: false, field: 8 },
        });
      const gone = victims((r) => r.key === saKey);
      if (gone.length === 0) return conflict();
      for (const k of gone) this.removeRegistration(k, me);
    } else {
      const gone = isAllRegistrants(this.type)
        ? victims((r) => r.nexusKey !== me)
        : victims((r) => r.key === saKey && r.nexusKey !== me);
      for (const k of gone) this.removeRegistration(k, me);
      const changedType = this.type !== type;
      this.type = type;
      this.holder = me;
      if (changedType) for (const k of this.regs.keys()) if (k !== me) this.ua.add(k, Asc.RESERVATIONS_RELEASED);
    }
    this.generation = (this.generation + 1) >>> 0;
    return undefined;
  }

  private removeRegistration(nexusKey: string, by: string): void {
    this.regs.delete(nexusKey);
    if (nexusKey !== by) this.ua.add(nexusKey, Asc.REGISTRATIONS_PREEMPTED);
    if (this.holder === nexusKey && !isAllRegistrants(this.type)) {
      this.type = 0;
      this.holder = undefined;
    }
  }

  /** A registrant unregisters: a reservation it holds goes with it (SPC-4 5.13.10.3). */
  private unregister(nexusKey: string): void {
    this.regs.delete(nexusKey);
    if (!this.type) return;
    if (isAllRegistrants(this.type)) {
      if (this.regs.size === 0) this.release(nexusKey);
    } else if (this.holder === nexusKey) {
      this.release(nexusKey);
    }
  }

  /** SPC-4 5.13.11.2.2: releasing a registrants-only / all-registrants reservation tells the others. */
  private release(by: string): void {
    const tell = isRegistrantsType(this.type);
    this.type = 0;
    this.holder = undefined;
    if (tell) for (const k of this.regs.keys()) if (k !== by) this.ua.add(k, Asc.RESERVATIONS_RELEASED);
  }
}
