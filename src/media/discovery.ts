import type { InitiatorSession } from '../initiator/session.ts';
import { decodeLunList } from '../scsi/lun.ts';
import { sameDesignator, type Designator } from '../xcopy/copy-target.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { ChangerClient } from './changer-client.ts';
import type { ElementStatus } from '../scsi/smc.ts';
import { DiscoveryError, hexAddress } from './errors.ts';
import { buildInquiry, buildReportLuns } from '../scsi/cdb/spc.ts';

/** SPC-4 standard INQUIRY PERIPHERAL DEVICE TYPE. */
const Pdt = { SEQUENTIAL_ACCESS: 0x01, MEDIUM_CHANGER: 0x08 } as const;

export interface DiscoveredLibrary {
  changer: { lun: number };
  /** Drives in data transfer element address order; `designator` is the LU's NAA (what CSCDs name). */
  drives: Array<{ lun: number; elementAddress: number; designator: Designator }>;
  /** Storage element addresses, ascending. */
  slots: number[];
  /** Import/export element addresses, ascending. */
  ie: number[];
}

interface TapeLu {
  lun: number;
  designators: Designator[];
  /** Standard INQUIRY bytes 8–31: T10 VENDOR IDENTIFICATION and PRODUCT IDENTIFICATION, as sent. */
  vendorProduct: Uint8Array;
  /** VPD 80h PRODUCT SERIAL NUMBER, trimmed. */
  serial: string;
}

/**
 * Work out a library behind one target: REPORT LUNS, standard INQUIRY of each LU (changer
 * 08h, tape 01h), VPD 83h and 80h of each tape LU, then READ ELEMENT STATUS with DVCID. Each data
 * transfer element is matched to the tape LU whose identity its device identifier carries, never
 * by order.
 */
export async function discoverLibrary(
  session: InitiatorSession,
  opts: { name?: string; changerLun?: number } = {},
): Promise<DiscoveredLibrary> {
  const name = opts.name ?? session.targetName ?? 'library';
  const luns = decodeLunList((await session.command(0, buildReportLuns(), { inLength: 16384 })).data);
  const changers: number[] = [];
  const tapes: TapeLu[] = [];
  for (const lun of luns) {
    const std = (await session.command(lun, buildInquiry(96), { inLength: 96 })).data;
    if (std.length < 1 || std[0] >> 5 !== 0) continue; // PERIPHERAL QUALIFIER: connected LUs only
    const pdt = std[0] & 0x1f;
    if (pdt === Pdt.MEDIUM_CHANGER) changers.push(lun);
    else if (pdt === Pdt.SEQUENTIAL_ACCESS) tapes.push(await describeTape(session, lun, std));
  }
  const changerLun = opts.changerLun ?? changers[0];
  if (changerLun === undefined || !changers.includes(changerLun)) {
    const seen = luns.length ? `LUNs ${luns.join(', ')}` : 'no LUNs';
    const which = opts.changerLun === undefined ? 'no medium changer' : `no medium changer at LUN ${opts.changerLun}`;
    throw new DiscoveryError(
      'ERR_NO_CHANGER',
      `${name} has ${which} (it reports ${seen}): serve the library with its changer, or check the target name`,
    );
  }
  const changer = await ChangerClient.open(session, changerLun, { name });
  const els = await changer.status();
  const drives: DiscoveredLibrary['drives'] = [];
  const taken = new Set<number>();
  for (const e of els.filter((x) => x.type === 'drive').sort((a, b) => a.address - b.address)) {
    const lu = matchDrive(e, tapes, taken, name);
    taken.add(lu.lun);
    const naa = lu.designators.find((d) => d.designatorType === 3 && d.association === 0);
    drives.push({ lun: lu.lun, elementAddress: e.address, designator: naa ?? e.designator! });
  }
  const addresses = (type: ElementStatus['type']): number[] =>
    els
      .filter((x) => x.type === type)
      .map((x) => x.address)
      .sort((a, b) => a - b);
  return { changer: { lun: changerLun }, drives, slots: addresses('slot'), ie: addresses('ie') };
}

async function describeTape(session: InitiatorSession, lun: number, std: Uint8Array): Promise<TapeLu> {
  const vpd83 = (await session.command(lun, buildInquiry(4096, 0x83), { inLength: 4096 })).data;
  // SPC-4 7.8.15: VPD 80h, 3 PAGE LENGTH, 4… PRODUCT SERIAL NUMBER. Optional: absent is fine.
  const vpd80 = await session.command(lun, buildInquiry(255, 0x80), { inLength: 255, allowCheckCondition: true });
  const d = vpd80.status === 0 ? vpd80.data : new Uint8Array(0);
  const serial = d.length >= 4 && d[1] === 0x80 ? asciiField(d.subarray(4, Math.min(d.length, 4 + d[3]))) : '';
  return { lun, designators: decodeDeviceIdentificationPage(vpd83), vendorProduct: std.subarray(8, 32), serial };
}

/**
 * The tape LU a data transfer element's DVCID names (SMC-3 6.10, data transfer element
 * descriptor). Either the identifier equals one of the LU's VPD 83h designators, or it is the
 * T10 vendor ID form many libraries (Ferry's among them) report: VENDOR (8) + PRODUCT (16) as in
 * standard INQUIRY, then the VPD 80h serial number.
 */
function matchDrive(e: ElementStatus, tapes: readonly TapeLu[], taken: ReadonlySet<number>, name: string): TapeLu {
  const id = e.designator;
  const at = `drive element ${hexAddress(e.address)} of ${name}`;
  if (!id) {
    throw new DiscoveryError(
      'ERR_DRIVE_NO_IDENTIFIER',
      `${at} reports no device identifier (READ ELEMENT STATUS DVCID): drives cannot be matched to LUNs; ` +
        'use a changer that reports them',
    );
  }
  const free = tapes.filter((t) => !taken.has(t.lun));
  const exact = free.find((t) => t.designators.some((d) => sameDesignator(d, id)));
  if (exact) return exact;
  if (id.designatorType === 1 && id.designator.length > 24) {
    const head = id.designator.subarray(0, 24);
    const serial = asciiField(id.designator.subarray(24));
    const t10 = free.find(
      (t) => t.serial !== '' && t.serial === serial && head.every((b, i) => b === t.vendorProduct[i]),
    );
    if (t10) return t10;
  }
  const ascii = id.codeSet === 2 || id.codeSet === 3;
  const shown = ascii ? `"${asciiField(id.designator)}"` : Buffer.from(id.designator).toString('hex');
  throw new DiscoveryError(
    'ERR_DRIVE_UNMATCHED',
    `${at} has device identifier ${shown}, which no tape LUN of ${name} reports: map that drive's LUN to this target`,
  );
}

/** An ASCII field with its padding (blanks, NULs) trimmed. */
function asciiField(b: Uint8Array): string {
  return String.fromCharCode(...b).replace(/^[\s\0]+|[\s\0]+$/g, '');
}
