import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TapeDriveLu } from './ssc.ts';
import { MediumChangerLu } from './smc.ts';
import { LibraryInventory, type LibraryOptions } from '../tape/library.ts';
import { Cartridge } from '../tape/cartridge.ts';

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
export async function openStandaloneDrive(cartPath: string, opts: { createSizeBytes?: number; barcode?: string } = {}): Promise<TapeDriveLu> {
  let cart: Cartridge;
  try {
    await access(cartPath);
    cart = await Cartridge.open(cartPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const base = cartPath.replace(/^.*[\\/]/, '').replace(/\.cart$/, '').toUpperCase().slice(0, 32);
    cart = await Cartridge.create(cartPath, { barcode: opts.barcode ?? base, capacityBytes: opts.createSizeBytes ?? 2 ** 31 });
  }
  const lu = new TapeDriveLu({ identitySeed: `ferry-tape:${resolve(cartPath)}` });
  await lu.insert(cart);
  return lu;
}
