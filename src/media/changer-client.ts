import { ScsiCommandError, type InitiatorSession } from '../initiator/session.ts';
import { Asc, SenseKey } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { decodeElementStatus, type ElementStatus } from '../scsi/smc.ts';
import { ChangerError, hexAddress } from './errors.ts';
import { ElementType, buildMoveMedium, buildReadElementStatus } from '../scsi/cdb/smc.ts';
import { buildInquiry } from '../scsi/cdb/spc.ts';

export type { ElementStatus } from '../scsi/smc.ts';

/** First READ ELEMENT STATUS allocation; re-issued with the size the header reports when short. */
const FIRST_ALLOCATION = 64 << 10;
/** SMC-3 READ ELEMENT STATUS ALLOCATION LENGTH is 24 bits. */
const MAX_ALLOCATION = 0xffffff;
/** SMC-3 MOVE MEDIUM: MEDIUM TRANSPORT ADDRESS 0 selects the default transport. */
const DEFAULT_TRANSPORT = 0;

const same = (s: { asc: number; ascq: number }, [asc, ascq]: readonly [number, number]): boolean =>
  s.asc === asc && s.ascq === ascq;

export interface ChangerClientOptions {
  /** Library name for messages (default: the session's target name). */
  name?: string;
  /** First READ ELEMENT STATUS allocation length (default 64 KiB; a short reply is asked again). */
  allocationLength?: number;
}

/**
 * A medium changer (SMC-3) reached through the initiator: element status with barcodes and
 * drive identifiers, MOVE MEDIUM, and loading a cartridge into a drive by barcode.
 *
 * A real library picks a cartridge out of a drive only after the drive has ejected it: call
 * DriveClient.unload() before unload()/load() take a cartridge out. Ferry's own changer ejects
 * the cartridge itself.
 */
export class ChangerClient {
  readonly session: InitiatorSession;
  readonly lun: number;
  /** Library name used in messages (the target name unless given). */
  readonly name: string;
  /** DVCID was refused once (ILLEGAL REQUEST): ask without it from then on. */
  private dvcid = true;
  private readonly firstAllocation: number;

  private constructor(session: InitiatorSession, lun: number, name: string, firstAllocation: number) {
    this.session = session;
    this.lun = lun;
    this.name = name;
    this.firstAllocation = firstAllocation;
  }

  /** Open the changer at `lun`, checking it is one (standard INQUIRY PERIPHERAL DEVICE TYPE 08h). */
  static async open(session: InitiatorSession, lun: number, opts: ChangerClientOptions = {}): Promise<ChangerClient> {
    const name = opts.name ?? session.targetName ?? 'library';
    const std = (await session.command(lun, buildInquiry(96), { inLength: 96 })).data;
    if (std.length < 1 || std[0] >> 5 !== 0 || (std[0] & 0x1f) !== 0x08) {
      const pdt = std.length ? `0x${(std[0] & 0x1f).toString(16).padStart(2, '0')}` : 'none';
      throw new ChangerError(
        'ERR_NOT_A_CHANGER',
        `LUN ${lun} of ${name} is not a medium changer (device type ${pdt}): ` +
          'use the changer LUN that discovery reports',
      );
    }
    const first = Math.min(MAX_ALLOCATION, Math.max(16, opts.allocationLength ?? FIRST_ALLOCATION));
    return new ChangerClient(session, lun, name, first);
  }

  /**
   * Every element (SMC-3 READ ELEMENT STATUS, element type 0 = all) with VOLTAG (barcodes) and
   * DVCID (drive identifiers). A reply cut short by the allocation length is asked for again
   * with the length its header reports.
   */
  async status(): Promise<ElementStatus[]> {
    let allocation = this.firstAllocation;
    for (let attempt = 0; attempt < 4; attempt++) {
      const cdb = buildReadElementStatus({
        type: ElementType.ALL,
        voltag: true,
        dvcid: this.dvcid,
        allocationLength: allocation,
      });
      const r = await this.session.command(this.lun, cdb, { inLength: allocation, allowCheckCondition: true });
      if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === SenseKey.ILLEGAL_REQUEST && this.dvcid) {
        // SMC-3 6.10: DVCID is optional; a changer without it rejects the CDB field.
        this.dvcid = false;
        continue;
      }
      if (r.status !== ScsiStatus.GOOD) {
        throw this.scsiFailure(`read the element status of library ${this.name}`, r.status, r.rawSense);
      }
      const d = decodeElementStatus(r.data);
      if (!d.truncated) return d.elements;
      if (allocation >= MAX_ALLOCATION) break;
      allocation = Math.min(MAX_ALLOCATION, Math.max(d.bytesAvailable, allocation * 2));
    }
    throw new ChangerError(
      'ERR_ELEMENT_STATUS_TRUNCATED',
      `library ${this.name} kept returning incomplete element status: retry, or check the changer`,
    );
  }

  /** SMC-3 MOVE MEDIUM from `source` to `destination` with the default transport. */
  async moveMedium(source: number, destination: number): Promise<void> {
    const cdb = buildMoveMedium(DEFAULT_TRANSPORT, source, destination);
    const r = await this.session.command(this.lun, cdb, { allowCheckCondition: true });
    if (r.status === ScsiStatus.GOOD) return;
    const s = r.sense;
    const move = `move ${hexAddress(source)} → ${hexAddress(destination)} in library ${this.name}`;
    if (r.status === ScsiStatus.CHECK_CONDITION && s) {
      if (same(s, Asc.MEDIUM_SOURCE_ELEMENT_EMPTY)) {
        const why = `element ${hexAddress(source)} is empty: check \`ferry cartridges\``;
        throw new ChangerError('ERR_ELEMENT_EMPTY', `${move}: ${why}`);
      }
      if (same(s, Asc.MEDIUM_DESTINATION_ELEMENT_FULL)) {
        const why = `element ${hexAddress(destination)} is full: empty it first`;
        throw new ChangerError('ERR_ELEMENT_FULL', `${move}: ${why}`);
      }
      if (same(s, Asc.INVALID_ELEMENT_ADDRESS)) {
        const why = 'no such element: check the element addresses of `ferry cartridges`';
        throw new ChangerError('ERR_ELEMENT_INVALID', `${move}: ${why}`);
      }
      if (same(s, Asc.MEDIUM_REMOVAL_PREVENTED)) {
        throw new ChangerError(
          'ERR_MEDIUM_REMOVAL_PREVENTED',
          `${move}: medium removal is prevented (a drive or initiator holds the cartridge): ` +
            'unload the drive or release it',
        );
      }
    }
    throw this.scsiFailure(move, r.status, r.rawSense);
  }

  /** The element holding the cartridge with this barcode, if any. */
  async findCartridge(barcode: string): Promise<ElementStatus | undefined> {
    return (await this.status()).find((e) => e.full && e.barcode === barcode);
  }

  /**
   * Put cartridge `barcode` into the drive at `driveAddress`. Nothing happens when it is there
   * already; a different cartridge in the drive goes back to its source slot (or the first
   * empty slot) first.
   */
  async load(barcode: string, driveAddress: number): Promise<void> {
    let els = await this.status();
    const drive = this.driveElement(els, driveAddress);
    const cart = els.find((e) => e.full && e.barcode === barcode);
    if (!cart) {
      const why = `cartridge ${barcode} is not in library ${this.name}: check \`ferry cartridges\``;
      throw new ChangerError('ERR_CARTRIDGE_NOT_FOUND', why);
    }
    if (cart.address === driveAddress) return;
    if (drive.full) {
      await this.moveMedium(driveAddress, this.homeOf(els, drive, cart.address));
      els = await this.status();
    }
    const now = els.find((e) => e.full && e.barcode === barcode);
    if (!now) {
      const why = `cartridge ${barcode} left library ${this.name} during the load: check \`ferry cartridges\``;
      throw new ChangerError('ERR_CARTRIDGE_NOT_FOUND', why);
    }
    await this.moveMedium(now.address, driveAddress);
  }

  /** Take the cartridge out of the drive at `driveAddress` to its source slot (or the first empty slot). */
  async unload(driveAddress: number): Promise<void> {
    const els = await this.status();
    const drive = this.driveElement(els, driveAddress);
    if (!drive.full) return;
    await this.moveMedium(driveAddress, this.homeOf(els, drive));
  }

  private driveElement(els: readonly ElementStatus[], address: number): ElementStatus {
    const e = els.find((x) => x.address === address);
    if (!e || e.type !== 'drive') {
      const drives = els.filter((x) => x.type === 'drive').map((x) => hexAddress(x.address));
      throw new ChangerError(
        'ERR_NOT_A_DRIVE',
        `element ${hexAddress(address)} is not a drive of library ${this.name}: ` +
          `its drives are ${drives.join(', ') || 'none'}`,
      );
    }
    return e;
  }

  /** Where a drive's cartridge goes back to: its empty source slot, else the first empty slot. */
  private homeOf(els: readonly ElementStatus[], drive: ElementStatus, reserved?: number): number {
    const free = (e: ElementStatus | undefined): boolean =>
      !!e && e.type === 'slot' && !e.full && e.access && e.address !== reserved;
    const source = els.find((e) => e.address === drive.sourceAddress);
    if (free(source)) return source!.address;
    const slot = els.find((e) => free(e));
    if (slot) return slot.address;
    const who = drive.barcode ? `cartridge ${drive.barcode}` : 'the cartridge';
    throw new ChangerError(
      'ERR_NO_EMPTY_SLOT',
      `no empty slot in library ${this.name} for ${who} from drive ${hexAddress(drive.address)}: ` +
        'export a cartridge first',
    );
  }

  private scsiFailure(what: string, status: number, rawSense: Uint8Array): ChangerError {
    const e = new ScsiCommandError(status, rawSense);
    if (e.sense?.key === SenseKey.NOT_READY) {
      const why = `cannot ${what}: the changer is not ready (${e.message}); retry`;
      return new ChangerError('ERR_CHANGER_NOT_READY', why, { cause: e });
    }
    return new ChangerError('ERR_CHANGER_COMMAND', `cannot ${what}: ${e.message}`, { cause: e });
  }
}
