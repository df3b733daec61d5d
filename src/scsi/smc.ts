import { SenseError, SenseKey, Asc } from './sense.ts';
import { type LogicalUnit, type Nexus, type ResetKind, type ScsiResult, type ScsiTask } from './task.ts';
import { runCommand, type CommandEntry, type CommandTable } from './command-table.ts';
import { SpcState, spcCommands, spcGate, VersionDescriptor, type SpcLu } from './spc.ts';
import { makePage } from './mode-pages.ts';
import { luIdentity } from './identity.ts';
import { trimToAllocation, decodePreventAllowCdb } from './cdb/spc.ts';
import { ByteWriter } from '../util/byte-writer.ts';
import { ByteReader } from '../util/byte-reader.ts';
import { DecodeError } from '../util/errors.ts';
import { ElementBase, type Element, type ElementKind, type LibraryInventory } from '../tape/library.ts';
import type { TapeDriveLu } from './ssc.ts';
import type { SenseFormat } from './sense.ts';
import { ScsiOpcode } from './opcodes.ts';
import {
  ElementType,
  decodeInitElementStatusRangeCdb,
  decodeMoveMediumCdb,
  decodePositionToElementCdb,
  decodeReadElementStatusCdb,
} from './cdb/smc.ts';

/**
 * SMC-3 medium changer LU over a LibraryInventory and its drives' LUs. MOVE MEDIUM into a
 * drive opens (or creates) the cartridge file and threads it; out of a drive it unloads the
 * cartridge first, unless removal is prevented.
 */

const invalidCdb = (field: number, bit?: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB, { fieldPointer: { cd: true, field, bit } });
const invalidElement = (field: number): SenseError =>
  new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_ELEMENT_ADDRESS, { fieldPointer: { cd: true, field } });

const TYPE_CODE: Record<ElementKind, number> = {
  transport: ElementType.MEDIUM_TRANSPORT,
  storage: ElementType.STORAGE,
  'import-export': ElementType.IMPORT_EXPORT,
  drive: ElementType.DATA_TRANSFER,
};

export class MediumChangerLu implements LogicalUnit, SpcLu {
  readonly deviceType = 0x08;
  readonly spc: SpcState;
  get senseFormat(): SenseFormat {
    return this.spc.senseFormat;
  }
  readonly inventory: LibraryInventory;
  readonly drives: readonly TapeDriveLu[];
  readonly preventers = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(inventory: LibraryInventory, drives: readonly TapeDriveLu[], opts: { identitySeed: string }) {
    this.inventory = inventory;
    this.drives = drives;
    this.spc = new SpcState({
      identity: luIdentity(opts.identitySeed, { product: 'VIRTUAL-LIBRARY' }),
      deviceType: 0x08,
      removable: true,
      versionDescriptors: [VersionDescriptor.SMC_3],
    });
    this.spc.table = SMC_TABLE;
    for (const p of changerModePages(inventory)) this.spc.modePages.add(p);
  }

  execute(task: ScsiTask): Promise<ScsiResult> {
    const run = this.queue.then(() =>
      runCommand(SMC_TABLE, this, task, {
        gate: (e, t) => spcGate(this, e, t),
        senseFormat: () => this.spc.senseFormat,
      }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  reset(kind: ResetKind, _from: Nexus): void {
    this.spc.reset(kind);
    this.preventers.clear();
  }

  nexusLost(nexus: Nexus): void {
    this.spc.nexusLost(nexus);
    this.preventers.delete(nexus.key);
  }

  async close(): Promise<void> {
    await this.queue;
  }

  /** SMC-3 MOVE MEDIUM (also used by the CLI and tests directly). */
  async move(source: number, destination: number): Promise<void> {
    const inv = this.inventory;
    const src = inv.element(source);
    const dst = inv.element(destination);
    if (!src || src.kind === 'transport') throw invalidElement(4);
    if (!dst || dst.kind === 'transport') throw invalidElement(6);
    if (!src.barcode) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_SOURCE_ELEMENT_EMPTY);
    if (source === destination) return;
    if (dst.barcode) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_DESTINATION_ELEMENT_FULL);
    if (src.kind === 'drive') {
      const lu = this.drives[src.index];
      // SMC-3 MOVE MEDIUM: the drive holds the medium (PREVENT MEDIUM REMOVAL on the drive).
      if (lu.mediumRemovalPrevented) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_REMOVAL_PREVENTED);
      const cart = await lu.remove();
      await cart?.close();
    }
    if (dst.kind === 'drive') {
      const cart = await inv.openCartridge(src.barcode);
      await inv.move(source, destination);
      await this.drives[dst.index].insert(cart); // every nexus of the drive gets 28/00
      return;
    }
    await inv.move(source, destination);
  }
}

/** SMC-3 mode pages: element address assignment (1Dh), transport geometry (1Eh), device capabilities (1Fh). */
function changerModePages(inv: LibraryInventory): ReturnType<typeof makePage>[] {
  const u16 = (v: number): number[] => [v >> 8, v & 0xff];
  return [
    makePage(0x1d, [
      ...u16(ElementBase.MEDIUM_TRANSPORT),
      ...u16(1),
      ...u16(ElementBase.STORAGE),
      ...u16(inv.slots),
      ...u16(ElementBase.IMPORT_EXPORT),
      ...u16(inv.importExport),
      ...u16(ElementBase.DATA_TRANSFER),
      ...u16(inv.drives),
      0,
      0,
    ]),
    makePage(0x1e, [0x00, 0x00]),
    // byte 2: StorDT b3, StorI/E b2, StorST b1; bytes 4–7: MT→, ST→, I/E→, DT→ move capabilities (DT b3, I/E b2, ST
    // b1).
    makePage(0x1f, [0x0e, 0, 0x0e, 0x0e, 0x0e, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  ];
}

/**
 * SMC-3 READ ELEMENT STATUS. Element descriptor: 0–1 address; 2 flags (FULL b0, IMPEXP b1,
 * EXCEPT b2, ACCESS b3, EXENAB b4, INENAB b5); 4–5 ASC/ASCQ; 9 SVALID b7; 10–11 source address;
 * then the primary volume tag (36) when VOLTAG, then the identification descriptor when DVCID.
 */
function readElementStatus(task: ScsiTask, lu: MediumChangerLu): Uint8Array {
  const c = decodeReadElementStatusCdb(task.cdb);
  if (c.type > ElementType.DATA_TRANSFER) throw invalidCdb(1, 3);
  let els = lu.inventory
    .elements()
    .filter((e) => (c.type === ElementType.ALL || TYPE_CODE[e.kind] === c.type) && e.address >= c.start);
  if (els.length === 0) throw invalidElement(2);
  els = els.slice(0, c.count);
  const pages: Element[][] = [];
  for (const e of els) {
    const last = pages.at(-1);
    if (last && last[0].kind === e.kind) last.push(e);
    else pages.push([e]);
  }
  const parts: Uint8Array[] = [];
  for (const page of pages) {
    const kind = page[0].kind;
    const idLen = c.dvcid ? (kind === 'drive' ? 4 + 48 : 4) : 0;
    const descLen = 12 + (c.voltag ? 36 : 0) + idLen;
    const w = new ByteWriter(8 + descLen * page.length);
    w.u8(TYPE_CODE[kind])
      .u8(c.voltag ? 0x80 : 0)
      .u16(descLen)
      .u8(0)
      .u24(descLen * page.length);
    for (const e of page) {
      const at = w.pos;
      w.setU16(at, e.address);
      let flags = e.barcode ? 0x01 : 0;
      if (kind !== 'transport') flags |= 0x08; // ACCESS
      // INENAB, EXENAB, IMPEXP
      if (kind === 'import-export') flags |= 0x30 | (e.barcode && e.source !== null ? 0x02 : 0);
      w.setU8(at + 2, flags);
      if (kind === 'drive') {
        // ID VALID, LU VALID, LUN (best effort)
        w.setU8(at + 6, 0x20 | 0x10 | ((lu.drives[e.index] ? e.index + 1 : 0) & 7));
        w.setU8(at + 7, 0);
      }
      if (e.barcode && e.source !== null) {
        w.setU8(at + 9, 0x80);
        w.setU16(at + 10, e.source);
      } else if (e.barcode) {
        w.setU8(at + 9, 0x80);
        w.setU16(at + 10, e.address);
      }
      let p = at + 12;
      if (c.voltag) {
        if (e.barcode)
          for (let i = 0; i < 32; i++) w.setU8(p + i, i < e.barcode.length ? e.barcode.charCodeAt(i) : 0x20);
        p += 36;
      }
      if (c.dvcid) {
        if (kind === 'drive') {
          const d = lu.drives[e.index];
          const id =
            d.spc.identity.vendor.padEnd(8).slice(0, 8) +
            d.spc.identity.product.padEnd(16).slice(0, 16) +
            d.serial.padEnd(24).slice(0, 24);
          w.setU8(p, 0x02); // code set ASCII
          w.setU8(p + 1, 0x01); // T10 vendor ID
          w.setU8(p + 3, 48);
          for (let i = 0; i < 48; i++) w.setU8(p + 4 + i, id.charCodeAt(i));
        }
      }
      w.pos = at + descLen;
    }
    parts.push(w.buf);
  }
  const body = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(8 + body);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, els[0].address);
  dv.setUint16(2, els.length);
  out[5] = (body >> 16) & 0xff;
  dv.setUint16(6, body & 0xffff);
  let at = 8;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return trimToAllocation(out, c.allocationLength);
}

async function moveMedium(task: ScsiTask, lu: MediumChangerLu): Promise<void> {
  const c = decodeMoveMediumCdb(task.cdb);
  if (c.invert) throw invalidCdb(10, 0);
  if (c.transport !== 0 && lu.inventory.element(c.transport)?.kind !== 'transport') throw invalidElement(2);
  await lu.move(c.source, c.destination);
}

function initializeElementStatusWithRange(task: ScsiTask, lu: MediumChangerLu): void {
  const c = decodeInitElementStatusRangeCdb(task.cdb);
  if (c.range && !lu.inventory.element(c.start)) throw invalidElement(2);
}

function preventAllow(task: ScsiTask, lu: MediumChangerLu): void {
  const c = decodePreventAllowCdb(task.cdb);
  if (c.prevent > 1) throw invalidCdb(4, 1);
  if (c.prevent) lu.preventers.add(task.nexus.key);
  else lu.preventers.delete(task.nexus.key);
}

function entry(
  name: string,
  cdbLength: number,
  handler: CommandEntry<MediumChangerLu>['handler'],
  pr?: 'allowed' | 'read' | 'write',
): CommandEntry<MediumChangerLu> {
  return { name, cdbLength, handler, pr };
}

export const SMC_TABLE: CommandTable<MediumChangerLu> = new Map<number, CommandEntry<MediumChangerLu>>([
  ...spcCommands<MediumChangerLu>(),
  [ScsiOpcode.INITIALIZE_ELEMENT_STATUS, entry('INITIALIZE ELEMENT STATUS', 6, () => undefined)],
  [
    ScsiOpcode.INITIALIZE_ELEMENT_STATUS_WITH_RANGE,
    entry('INITIALIZE ELEMENT STATUS WITH RANGE', 10, initializeElementStatusWithRange),
  ],
  [
    ScsiOpcode.POSITION_TO_ELEMENT,
    entry('POSITION TO ELEMENT', 10, (t, lu) => {
      if (!lu.inventory.element(decodePositionToElementCdb(t.cdb).destination)) throw invalidElement(4);
    }),
  ],
  [ScsiOpcode.MOVE_MEDIUM, entry('MOVE MEDIUM', 12, moveMedium)],
  [ScsiOpcode.READ_ELEMENT_STATUS, entry('READ ELEMENT STATUS', 12, readElementStatus, 'read')],
  [ScsiOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL, entry('PREVENT ALLOW MEDIUM REMOVAL', 6, preventAllow, 'read')],
]);

// ---- READ ELEMENT STATUS data: the initiator's decoder (the encoder is readElementStatus above) ----

/** SMC-3 element type codes as names. */
export type ElementTypeName = 'transport' | 'slot' | 'ie' | 'drive';

const TYPE_NAME: Record<number, ElementTypeName> = {
  [ElementType.MEDIUM_TRANSPORT]: 'transport',
  [ElementType.STORAGE]: 'slot',
  [ElementType.IMPORT_EXPORT]: 'ie',
  [ElementType.DATA_TRANSFER]: 'drive',
};

/** One element descriptor as an initiator sees it. */
export interface ElementStatus {
  type: ElementTypeName;
  address: number;
  full: boolean;
  access: boolean;
  /** EXCEPT set: the ASC/ASCQ of the abnormal state. */
  exception?: { asc: number; ascq: number };
  /** PRIMARY VOLUME TAG volume identifier, trailing blanks and NULs trimmed; absent when blank. */
  barcode?: string;
  /** SOURCE STORAGE ELEMENT ADDRESS when SVALID. */
  sourceAddress?: number;
  /** Data transfer elements with DVCID: the device identifier (SPC-4 designation descriptor fields). */
  designator?: { codeSet: number; designatorType: number; association: number; designator: Uint8Array };
}

export interface DecodedElementStatus {
  elements: ElementStatus[];
  /** Element status header: FIRST ELEMENT ADDRESS REPORTED and NUMBER OF ELEMENTS AVAILABLE. */
  firstAddress: number;
  elementsAvailable: number;
  /** BYTE COUNT OF REPORT AVAILABLE + 8: the allocation length that returns everything. */
  bytesAvailable: number;
  /** Fewer bytes arrived than the header says exist (allocation length too small). */
  truncated: boolean;
}

/**
 * SMC-3 6.10 READ ELEMENT STATUS data. Element status header (8): 0–1 FIRST ELEMENT ADDRESS
 * REPORTED, 2–3 NUMBER OF ELEMENTS AVAILABLE, 5–7 BYTE COUNT OF REPORT AVAILABLE. Each element
 * status page (8): 0 ELEMENT TYPE CODE, 1 PVOLTAG b7 AVOLTAG b6, 2–3 ELEMENT DESCRIPTOR LENGTH,
 * 5–7 BYTE COUNT OF DESCRIPTOR DATA AVAILABLE; then descriptors (layout at readElementStatus),
 * where a data transfer element's device identifier follows the volume tags: 0 CODE SET b3:0,
 * 1 ASSOCIATION b5:4 DESIGNATOR TYPE b3:0, 3 IDENTIFIER LENGTH, 4… IDENTIFIER.
 * Data cut short by the allocation length decodes to the whole descriptors that arrived, with
 * `truncated` set; lengths that contradict each other throw DecodeError.
 */
export function decodeElementStatus(data: Uint8Array): DecodedElementStatus {
  const r = new ByteReader(data);
  const firstAddress = r.u16(0);
  const elementsAvailable = r.u16(2);
  const reportBytes = r.u24(5);
  const end = Math.min(data.length, 8 + reportBytes);
  const elements: ElementStatus[] = [];
  let truncated = data.length < 8 + reportBytes;
  for (let page = 8; page < end;) {
    if (page + 8 > end) {
      truncated = true;
      break;
    }
    const code = r.u8(page);
    const type = TYPE_NAME[code & 0x0f];
    if (!type) throw new DecodeError(`element status page at ${page}: element type code ${code} is not 1–4`, page);
    const pvoltag = (r.u8(page + 1) & 0x80) !== 0;
    const avoltag = (r.u8(page + 1) & 0x40) !== 0;
    const descLen = r.u16(page + 2);
    const pageBytes = r.u24(page + 5);
    const minLen = 12 + (pvoltag ? 36 : 0) + (avoltag ? 36 : 0);
    if (descLen < minLen) {
      throw new DecodeError(`element status page at ${page}: descriptor length ${descLen} < ${minLen}`, page + 2);
    }
    if (page + 8 + pageBytes > 8 + reportBytes) {
      throw new DecodeError(`element status page at ${page}: ${pageBytes} bytes overrun the report`, page + 5);
    }
    const pageEnd = page + 8 + pageBytes;
    for (let d = page + 8; d + descLen <= pageEnd; d += descLen) {
      if (d + descLen > data.length) {
        truncated = true;
        break;
      }
      elements.push(decodeElementDescriptor(new ByteReader(data.subarray(d, d + descLen)), type, pvoltag, avoltag));
    }
    if (pageEnd > data.length) {
      truncated = true;
      break;
    }
    page = pageEnd;
  }
  return { elements, firstAddress, elementsAvailable, bytesAvailable: 8 + reportBytes, truncated };
}

function decodeElementDescriptor(
  r: ByteReader,
  type: ElementTypeName,
  pvoltag: boolean,
  avoltag: boolean,
): ElementStatus {
  const flags = r.u8(2);
  const e: ElementStatus = { type, address: r.u16(0), full: (flags & 0x01) !== 0, access: (flags & 0x08) !== 0 };
  if (flags & 0x04) e.exception = { asc: r.u8(4), ascq: r.u8(5) }; // EXCEPT b2
  if (r.u8(9) & 0x80) e.sourceAddress = r.u16(10); // SVALID b7
  let at = 12;
  if (pvoltag) {
    // Volume tag: 0–31 VOLUME IDENTIFIER (ASCII, blank padded), 34–35 VOLUME SEQUENCE NUMBER.
    const tag = String.fromCharCode(...r.buf.subarray(at, at + 32)).replace(/[\s\0]+$/, '');
    if (tag) e.barcode = tag;
    at += 36;
  }
  if (avoltag) at += 36;
  if (type === 'drive' && at + 4 <= r.length) {
    const len = r.u8(at + 3);
    if (len > 0) {
      if (at + 4 + len > r.length) {
        throw new DecodeError(`element ${e.address}: identifier length ${len} overruns the descriptor`, at + 3);
      }
      const b1 = r.u8(at + 1);
      e.designator = {
        codeSet: r.u8(at) & 0x0f,
        designatorType: b1 & 0x0f,
        association: (b1 >> 4) & 3,
        designator: r.buf.slice(at + 4, at + 4 + len),
      };
    }
  }
  return e;
}
