import { SenseError, SenseKey, Asc, type SenseFormat } from './sense.ts';

/**
 * Mode pages (SPC-4 7.5): each page keeps its current, default and changeable-mask bytes,
 * including the 2-byte (page_0) or 4-byte (sub_page) header. Device types register their own.
 */
export interface ModePage {
  readonly page: number;
  readonly subpage: number;
  /** Current values, header included. MODE SELECT edits these in place. */
  current: Uint8Array;
  readonly defaults: Uint8Array;
  /** Bits an initiator may change (same length as `current`). */
  readonly changeable: Uint8Array;
}

/** Build a page_0 format page (SPC-4 7.5.7): byte 0 PS/SPF/page code, byte 1 page length. */
export function makePage(page: number, body: number[], changeableBody: number[] = []): ModePage {
  const current = new Uint8Array(2 + body.length);
  current[0] = page & 0x3f;
  current[1] = body.length;
  current.set(body, 2);
  const changeable = new Uint8Array(current.length);
  changeable.set(changeableBody.slice(0, body.length), 2);
  return { page, subpage: 0, current, defaults: current.slice(), changeable };
}

export const ModePageCode = {
  READ_WRITE_ERROR_RECOVERY: 0x01,
  DISCONNECT_RECONNECT: 0x02,
  CACHING: 0x08,
  CONTROL: 0x0a,
  INFORMATIONAL_EXCEPTIONS: 0x1c,
  ALL: 0x3f,
} as const;

/** SPC-4 7.5.8 control mode page (0Ah): D_SENSE byte 2 b2, SWP byte 4 b3, TAS byte 5 b6. */
export const ControlPageBit = { D_SENSE: 0x04, SWP: 0x08 } as const;

export function controlPage(): ModePage {
  // byte 2: TST=000 (one task set), D_SENSE=0, changeable; byte 3: QUEUE ALGORITHM MODIFIER 1
  // (unrestricted), QERR 00; byte 4: SWP=0, changeable; byte 5: TAS=1 (aborted tasks get TASK
  // ABORTED); bytes 8–9 BUSY TIMEOUT PERIOD FFFFh (unlimited).
  return makePage(
    ModePageCode.CONTROL,
    [0x00, 0x10, 0x00, 0x40, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00],
    [ControlPageBit.D_SENSE, 0, ControlPageBit.SWP, 0, 0, 0, 0, 0, 0, 0],
  );
}

/** D_SENSE (SPC-4 7.5.8): CHECK CONDITION sense in descriptor format (1) or fixed format (0). */
export function senseFormatOf(pages: ModePages): SenseFormat {
  return (pages.get(ModePageCode.CONTROL)?.current[2] ?? 0) & ControlPageBit.D_SENSE ? 'descriptor' : 'fixed';
}

/** SWP (SPC-4 7.5.8): the logical unit's medium is write protected by software. */
export function softwareWriteProtectOf(pages: ModePages): boolean {
  return ((pages.get(ModePageCode.CONTROL)?.current[4] ?? 0) & ControlPageBit.SWP) !== 0;
}

export class ModePages {
  private readonly pages: ModePage[] = [];

  add(p: ModePage): void {
    const i = this.pages.findIndex((q) => q.page === p.page && q.subpage === p.subpage);
    if (i >= 0) this.pages[i] = p;
    else this.pages.push(p);
    this.pages.sort((a, b) => (a.page === 0 ? 64 : a.page) - (b.page === 0 ? 64 : b.page) || a.subpage - b.subpage);
  }

  get(page: number, subpage = 0): ModePage | undefined {
    return this.pages.find((p) => p.page === page && p.subpage === subpage);
  }

  /** Back to defaults (LOGICAL UNIT RESET does not require it; power on does). */
  resetToDefaults(): void {
    for (const p of this.pages) p.current = p.defaults.slice();
  }

  /**
   * The page bytes MODE SENSE returns for PC (0 current, 1 changeable, 2 default) and a page
   * code: 3Fh means all pages (subpage 00h: page_0 only; FFh: all subpages). SPC-4 6.11
   */
  sense(pageControl: number, page: number, subpage: number): Uint8Array {
    if (pageControl === 3)
      throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.SAVING_PARAMETERS_NOT_SUPPORTED, {
        fieldPointer: { cd: true, field: 2, bit: 7 },
      });
    const pick = (p: ModePage): Uint8Array => {
      if (pageControl === 0) return p.current;
      if (pageControl === 2) return p.defaults;
      const m = p.changeable.slice();
      m.set(p.current.subarray(0, p.subpage ? 4 : 2)); // headers are never masked
      return m;
    };
    let chosen: ModePage[];
    if (page === ModePageCode.ALL) {
      if (subpage !== 0 && subpage !== 0xff) throw invalidCdb(3);
      chosen = subpage === 0xff ? this.pages : this.pages.filter((p) => p.subpage === 0);
    } else if (subpage === 0xff) {
      chosen = this.pages.filter((p) => p.page === page);
      if (chosen.length === 0) throw invalidCdb(2);
    } else {
      const p = this.get(page, subpage);
      if (!p) throw invalidCdb(subpage ? 3 : 2);
      chosen = [p];
    }
    const out = new Uint8Array(chosen.reduce((n, p) => n + p.current.length, 0));
    let at = 0;
    for (const p of chosen) {
      out.set(pick(p), at);
      at += p.current.length;
    }
    return out;
  }

  /**
   * Apply the pages of a MODE SELECT parameter list (after the header and block descriptors).
   * All pages are validated before any is changed. Returns true when something changed.
   * `listOffset` is where `pagesBytes` starts in the parameter list, for the field pointer.
   */
  select(pagesBytes: Uint8Array, listOffset: number): boolean {
    const edits: Array<[ModePage, Uint8Array]> = [];
    let at = 0;
    while (at < pagesBytes.length) {
      const spf = !!(pagesBytes[at] & 0x40);
      const code = pagesBytes[at] & 0x3f;
      const hdr = spf ? 4 : 2;
      if (at + hdr > pagesBytes.length) throw paramError(Asc.PARAMETER_LIST_LENGTH_ERROR, listOffset + at);
      const subpage = spf ? pagesBytes[at + 1] : 0;
      const len = hdr + (spf ? (pagesBytes[at + 2] << 8) | pagesBytes[at + 3] : pagesBytes[at + 1]);
      const p = this.get(code, subpage);
      if (!p) throw paramError(Asc.INVALID_FIELD_IN_PARAMETER_LIST, listOffset + at);
      if (len !== p.current.length) throw paramError(Asc.INVALID_FIELD_IN_PARAMETER_LIST, listOffset + at + 1);
      if (at + len > pagesBytes.length) throw paramError(Asc.PARAMETER_LIST_LENGTH_ERROR, listOffset + at);
      const next = p.current.slice();
      for (let i = hdr; i < len; i++) {
        const v = pagesBytes[at + i];
        const mask = p.changeable[i];
        // SPC-4 6.9: a value that differs from current in a non-changeable bit is an error.
        if ((v & ~mask & 0xff) !== (p.current[i] & ~mask & 0xff))
          throw paramError(Asc.INVALID_FIELD_IN_PARAMETER_LIST, listOffset + at + i);
        next[i] = (p.current[i] & ~mask) | (v & mask);
      }
      edits.push([p, next]);
      at += len;
    }
    let changed = false;
    for (const [p, next] of edits) {
      if (!sameBytes(p.current, next)) changed = true;
      p.current = next;
    }
    return changed;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function invalidCdb(field: number): SenseError {
  return new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, { fieldPointer: { cd: true, field } });
}

function paramError(asc: readonly [number, number], field: number): SenseError {
  return new SenseError(SenseKey.ILLEGAL_REQUEST, asc, { fieldPointer: { cd: false, field } });
}
