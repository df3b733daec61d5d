import { existsSync } from 'node:fs';
import { TapeDriveLu } from '../scsi/ssc.ts';
import type { TapeLuns } from './tape-library.ts';
import { digestCartridgeBlocks, type CartridgeLocator, type TapeDigestSource } from '../tape/digest.ts';
import { FerryError } from '../util/errors.ts';

/**
 * The tape side of a storage node's management API (`POST /v1/tapes/digest`): digests of
 * cartridge blocks over the cartridges this node serves, a library's (in a slot or in a drive)
 * or a stand-alone drive's.
 */

/** Find a piece's cartridge file among what `ferry target --library/--tape` serves. */
export function tapeLocator(tapes: TapeLuns, nodeName: string): CartridgeLocator {
  const libraryDrives = new Set<unknown>(tapes.library?.drives ?? []);
  const standalone = tapes.luns.filter(([, lu]) => lu instanceof TapeDriveLu && !libraryDrives.has(lu)) as Array<
    [number, TapeDriveLu]
  >;
  return (p) => {
    if (p.lun !== undefined) {
      const lu = tapes.luns.find(([n]) => n === p.lun)?.[1];
      if (!(lu instanceof TapeDriveLu))
        throw new FerryError('ERR_NOT_FOUND', `LUN ${p.lun} of ${nodeName} is not a tape drive`);
      if (!lu.present)
        throw new FerryError('ERR_NOT_FOUND', `the tape drive at LUN ${p.lun} of ${nodeName} holds no cartridge`);
      return { path: lu.present.path, barcode: lu.present.label.barcode };
    }
    const barcode = p.barcode!;
    const inv = tapes.library?.inventory;
    if (inv?.elements().some((e) => e.barcode === barcode)) {
      const path = inv.cartridgePath(barcode);
      // A cartridge file is created the first time the cartridge is loaded.
      if (!existsSync(path))
        throw new FerryError('ERR_RANGE', `cartridge ${barcode} in ${nodeName}'s library has never been written`);
      return { path, barcode };
    }
    const drive = standalone.find(([, lu]) => lu.present?.label.barcode === barcode)?.[1];
    if (drive?.present) return { path: drive.present.path, barcode };
    throw new FerryError('ERR_NOT_FOUND', `${nodeName} serves no cartridge ${barcode}`);
  };
}

export function tapeDigestSource(tapes: TapeLuns, nodeName: string): TapeDigestSource {
  const locate = tapeLocator(tapes, nodeName);
  return { digest: (req) => digestCartridgeBlocks(req, locate) };
}
