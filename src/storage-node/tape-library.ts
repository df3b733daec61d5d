import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TapeDriveLu } from '../scsi/ssc.ts';
import { MediumChangerLu } from '../scsi/smc.ts';
import { LibraryInventory, type LibraryOptions } from '../tape/library.ts';
import { Cartridge } from '../tape/cartridge.ts';
import type { LogicalUnit } from '../scsi/task.ts';
import { UsageError } from '../util/errors.ts';
import { parseSize } from '../util/units.ts';

/**
 * What `ferry target --library/--tape` serves. The target maps the changer at LUN 0 and the
 * drives at LUN 1, 2, … (the order of their data-transfer element addresses).
 */
export interface OpenedLibrary {
  changer: MediumChangerLu;
  drives: TapeDriveLu[];
  inventory: LibraryInventory;
  close(): Promise<void>;
}

/**
 * Open (or create) a library directory. A new one gets a blank cartridge in every slot
 * (FER001L8, FER002L8, …; files created when first loaded). Cartridges the inventory places
 * in drives are loaded again, as after a power cycle.
 */
export async function openLibrary(dir: string, opts: LibraryOptions = {}): Promise<OpenedLibrary> {
  const inventory = await LibraryInventory.open(dir, opts);
  const abs = resolve(dir);
  const drives: TapeDriveLu[] = [];
  for (let i = 0; i < inventory.drives; i++) {
    const lu = new TapeDriveLu({ identitySeed: `ferry-vtl:${abs}:drive:${i}` });
    const el = inventory.driveElement(i);
    if (el.barcode) await lu.insert(await inventory.openCartridge(el.barcode));
    drives.push(lu);
  }
  const changer = new MediumChangerLu(inventory, drives, { identitySeed: `ferry-vtl:${abs}:changer` });
  return {
    changer,
    drives,
    inventory,
    async close() {
      await changer.close();
      for (const d of drives) await d.close();
    },
  };
}

/**
 * A stand-alone drive with one cartridge loaded. The cartridge file is created when missing
 * (`createSizeBytes`, default 2 GiB; barcode from `barcode` or the file name).
 */
export async function openStandaloneDrive(
  cartPath: string,
  opts: { createSizeBytes?: number; barcode?: string } = {},
): Promise<TapeDriveLu> {
  let cart: Cartridge;
  try {
    await access(cartPath);
    cart = await Cartridge.open(cartPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const base = cartPath
      .replace(/^.*[\\/]/, '')
      .replace(/\.cart$/, '')
      .toUpperCase()
      .slice(0, 32);
    cart = await Cartridge.create(cartPath, {
      barcode: opts.barcode ?? base,
      capacityBytes: opts.createSizeBytes ?? 2 ** 31,
    });
  }
  const lu = new TapeDriveLu({ identitySeed: `ferry-tape:${resolve(cartPath)}` });
  await lu.insert(cart);
  return lu;
}

/** The tape flags of `ferry target` (`--library DIR --drives N --slots N --cartridge-size 2G`, `--tape FILE`). */
export interface TapeServeOptions {
  library?: string;
  drives?: number | string;
  slots?: number | string;
  cartridgeSize?: number | string;
  tape?: string;
}

export interface TapeLuns {
  /** [LUN, LU] in LUN order: changer, then its drives, then the stand-alone drive. */
  luns: Array<[number, LogicalUnit]>;
  /** One line per LUN for the "target ready" log. */
  describe: Array<{ lun: number; kind: 'changer' | 'drive'; detail: string }>;
  library?: OpenedLibrary;
  close(): Promise<void>;
}

function count(v: number | string | undefined, what: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UsageError(`--${what} must be a whole number from 1 to ${max}, not "${v}"`);
  return n;
}

/**
 * Open what the tape flags ask for and number the LUs from `firstLun`: the changer, its drives
 * (in data-transfer element order), then a stand-alone drive. The target CLI maps them as given.
 */
export async function openTapeLuns(opts: TapeServeOptions, firstLun = 0): Promise<TapeLuns> {
  const out: TapeLuns = { luns: [], describe: [], close: async () => undefined };
  if (!opts.library && (opts.drives !== undefined || opts.slots !== undefined))
    throw new UsageError('--drives and --slots need --library DIR');
  const size =
    opts.cartridgeSize === undefined
      ? undefined
      : typeof opts.cartridgeSize === 'number'
        ? opts.cartridgeSize
        : parseSize(opts.cartridgeSize, '--cartridge-size');
  if (size !== undefined && size < 1 << 20) throw new UsageError('--cartridge-size must be at least 1M');
  let lun = firstLun;
  const closers: Array<() => Promise<void>> = [];
  try {
    if (opts.library) {
      const lib = await openLibrary(opts.library, {
        drives: count(opts.drives, 'drives', 64),
        slots: count(opts.slots, 'slots', 4000),
        cartridgeSizeBytes: size,
      });
      closers.push(() => lib.close());
      out.library = lib;
      out.luns.push([lun, lib.changer]);
      out.describe.push({
        lun: lun++,
        kind: 'changer',
        detail: `${opts.library} (${lib.inventory.slots} slots, ${lib.inventory.drives} drives)`,
      });
      lib.drives.forEach((d, i) => {
        out.luns.push([lun, d]);
        out.describe.push({ lun: lun++, kind: 'drive', detail: `drive ${i} (element ${(0x100 + i).toString(16)}h)` });
      });
    }
    if (opts.tape) {
      const d = await openStandaloneDrive(opts.tape, { createSizeBytes: size });
      closers.push(() => d.close());
      out.luns.push([lun, d]);
      out.describe.push({ lun: lun++, kind: 'drive', detail: opts.tape });
    }
  } catch (e) {
    for (const c of closers) await c();
    throw e;
  }
  out.close = async () => {
    for (const c of closers) await c();
  };
  return out;
}
